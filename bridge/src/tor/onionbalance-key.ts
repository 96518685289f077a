// The master (frontend) key of an Onionbalance service, in a form Debian's onionbalance 0.2.2 loads:
//  - PEM PKCS#8 Ed25519 ("OBv3 format"): what `onionbalance-config` writes and what onionbalance tries first;
//    made here with node:crypto.
//  - tor's own `hs_ed25519_secret_key` (an expanded key, 32-byte header + 64 bytes): onionbalance accepts it
//    after a warning ("not in OBv3 format ... Trying tor's format"), by patching stem's signing for the
//    expanded form. This is what a bridge's HiddenServiceDir holds, so an existing site address can become
//    the master. An expanded key cannot give back its public key without curve arithmetic, so the address
//    is read from the `hs_ed25519_public_key` next to it.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { onionAddressOf, readOnionAddress } from './onion-key.js';

const TOR_SECRET_HEADER = Buffer.concat([Buffer.from('== ed25519v1-secret: type0 =='), Buffer.alloc(3)]);

export type MasterKeyFormat = 'pem' | 'tor';

/** Make a new PEM master key at `file` (never overwriting one) and return its onion address. */
export async function makeMasterKey(file: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFile(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  return onionAddressOf(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32));
}

/**
 * The format and onion address (`<56 chars>.onion`) of a master key file. Throws, saying why, for anything
 * onionbalance would refuse.
 */
export async function readMasterKey(file: string): Promise<{ format: MasterKeyFormat; onion: string; bytes: Buffer }> {
  const bytes = await readFile(file);
  if (bytes.subarray(0, 11).toString('latin1') === '-----BEGIN ') {
    let key;
    try {
      key = createPrivateKey(bytes);
    } catch (err) {
      throw new Error(`${file}: not a readable PEM private key: ${(err as Error).message}`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`${file}: an ${key.asymmetricKeyType} key; onion services need ed25519`);
    }
    const pub = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
    return { format: 'pem', onion: onionAddressOf(pub), bytes };
  }
  if (bytes.byteLength === 96 && bytes.subarray(0, 32).equals(TOR_SECRET_HEADER)) {
    const onion = await readOnionAddress(dirname(file));
    if (!onion) {
      throw new Error(
        `${file} is a tor hs_ed25519_secret_key, but ${join(dirname(file), 'hs_ed25519_public_key')} (which gives ` +
          'its address) is missing or not a v3 public key',
      );
    }
    return { format: 'tor', onion, bytes };
  }
  throw new Error(`${file}: neither a PEM Ed25519 private key nor tor's hs_ed25519_secret_key`);
}
