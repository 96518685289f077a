import { readFile, writeFile, chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';

export const PEER_KEY_FILE = 'libp2p.key';

/**
 * The node's libp2p identity, kept in DATA_DIR/ipfs/libp2p.key (0600) so that its peer ID, which peers
 * and their payment records know it by, survives restarts. A file, not Helia's keychain: the keychain
 * would need a passphrase to protect it, and this key is only as secret as the onion key beside it.
 */
export async function loadOrCreatePeerKey(dir: string): Promise<PrivateKey> {
  const file = join(dir, PEER_KEY_FILE);
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`cannot read the libp2p key ${file}: ${err.message}`);
  });
  if (bytes) {
    if ((await stat(file)).mode & 0o077) await chmod(file, 0o600);
    try {
      return privateKeyFromProtobuf(bytes);
    } catch (err) {
      throw new Error(`${file} is not a libp2p private key (${(err as Error).message}); move it away to make a new peer ID`);
    }
  }
  const key = await generateKeyPair('Ed25519');
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' });
  return key;
}
