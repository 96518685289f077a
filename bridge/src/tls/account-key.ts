import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';

/**
 * The ACME account key, DATA_DIR/acme-account.key (0600). Reused on every run: the CA knows the account
 * by this key, and making a new one each start would create accounts and hit rate limits.
 */
export async function loadOrCreateAccountKey(dataDir: string): Promise<{ pem: string; path: string; created: boolean }> {
  const path = join(dataDir, 'acme-account.key');
  try {
    const pem = await readFile(path, 'utf8');
    createPrivateKey(pem); // refuse garbage here, not as a cryptic JWS error later
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
    return { pem, path, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`ACME account key ${path} is unreadable or invalid (${(err as Error).message}); fix or delete it (a new account is then registered)`);
    }
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFileAtomic(path, pem, 0o600);
  return { pem, path, created: true };
}
