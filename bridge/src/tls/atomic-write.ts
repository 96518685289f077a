import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a torn one: a temp
 * file in the same folder (same file system, so rename is atomic), created with `mode` from the start
 * (a key must never exist world-readable, even briefly), fsync'd, then renamed over the target.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // open()'s mode is filtered by the umask
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Installs a new certificate pair: both temp files are complete before either rename, and the key goes
 * first, so a watcher sees at worst a short mismatch (refused, last good pair kept) and never a partial file.
 */
export async function installPair(dir: string, fullchain: string, privkey: string): Promise<void> {
  // SSL_DIR may not exist yet on a first start with ACME: made private, it holds the key.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, 'privkey.pem'), privkey, 0o600);
  await writeFileAtomic(join(dir, 'fullchain.pem'), fullchain, 0o600);
}
