import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { onion3AddressFromPublicKey } from '../ipfs/onion3/onion3-address.js';

// The v3 onion key in tor's own HiddenServiceDir format (rend-spec-v3, and what tor itself writes),
// made here before tor starts, so that the onion address is known from the first moment: libp2p must
// listen on /onion3/<address>:4001 before tor, which needs libp2p's port, is started.

const SECRET_HEADER = Buffer.concat([Buffer.from('== ed25519v1-secret: type0 =='), Buffer.alloc(3)]);
const PUBLIC_HEADER = Buffer.concat([Buffer.from('== ed25519v1-public: type0 =='), Buffer.alloc(3)]);
/** The onion address (56 characters + ".onion") of an ed25519 public key. */
export function onionAddressOf(publicKey: Buffer): string {
  return `${onion3AddressFromPublicKey(publicKey)}.onion`;
}

/** The address of the key in `hsDir`, or undefined when there is none yet (nothing is created). */
export async function readOnionAddress(hsDir: string): Promise<string | undefined> {
  const existing = await readFile(join(hsDir, 'hs_ed25519_public_key')).catch(() => undefined);
  if (!existing || existing.byteLength !== 64 || !existing.subarray(0, 32).equals(PUBLIC_HEADER)) return undefined;
  return onionAddressOf(existing.subarray(32));
}

/**
 * The address of the key in `hsDir`, creating the key first when there is none. A present key is
 * never replaced: it is the site's address.
 */
export async function ensureOnionKey(hsDir: string): Promise<string> {
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  await chmod(hsDir, 0o700);
  const secretFile = join(hsDir, 'hs_ed25519_secret_key');
  const publicFile = join(hsDir, 'hs_ed25519_public_key');
  const existing = await readFile(publicFile).catch(() => undefined);
  if (existing) {
    if (existing.byteLength !== 64 || !existing.subarray(0, 32).equals(PUBLIC_HEADER)) {
      throw new Error(`${publicFile} is not a tor v3 public key; move it away only if you mean to change the onion address`);
    }
    return onionAddressOf(existing.subarray(32));
  }
  if (await readFile(secretFile).catch(() => undefined)) {
    throw new Error(`${secretFile} exists without ${publicFile}; start tor once with this folder to rebuild it, or restore the file`);
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  // Tor keeps the "expanded" secret key: SHA-512 of the seed, clamped as Ed25519 does.
  const expanded = createHash('sha512').update(seed).digest();
  expanded[0]! &= 248;
  expanded[31]! &= 63;
  expanded[31]! |= 64;
  const address = onionAddressOf(publicKey);
  await writeFile(secretFile, Buffer.concat([SECRET_HEADER, expanded]), { mode: 0o600, flag: 'wx' });
  await writeFile(publicFile, Buffer.concat([PUBLIC_HEADER, publicKey]), { mode: 0o600, flag: 'wx' });
  await writeFile(join(hsDir, 'hostname'), `${address}\n`, { mode: 0o600 });
  return address;
}
