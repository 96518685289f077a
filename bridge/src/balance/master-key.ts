// Which key the frontend publishes the site under. The master key IS the site's address (the torplus= TXT
// record), so it is chosen once and then kept:
//  1. TOR_DIR/onionbalance/master.key, when this frontend made one before: the address it already publishes.
//  2. TOR_DIR/hidden_service/hs_ed25519_secret_key, a single bridge's own key: a site moving from one bridge
//     to several keeps its address by starting the frontend on that bridge's TOR_DIR. Used in place (tor's
//     format, which onionbalance accepts), never copied, so there is one copy of the secret.
//  3. Otherwise a new PEM key at TOR_DIR/onionbalance/master.key.
// Either way the key is 0600 in a 0700 folder: it is the whole identity of the site.
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeMasterKey, readMasterKey, type MasterKeyFormat } from '../tor/onionbalance-key.js';

export type MasterKeySource = 'frontend' | 'bridge' | 'new';

export interface MasterKeyChoice {
  file: string;
  /** `<56 chars>.onion` */
  onion: string;
  format: MasterKeyFormat;
  source: MasterKeySource;
  /** Things the operator should hear about (a second key that is not used, permissions fixed). */
  notes: string[];
}

export function masterKeyPaths(torDir: string): { frontend: string; bridge: string } {
  return {
    frontend: join(torDir, 'onionbalance', 'master.key'),
    bridge: join(torDir, 'hidden_service', 'hs_ed25519_secret_key'),
  };
}

export async function chooseMasterKey(torDir: string): Promise<MasterKeyChoice> {
  await ensurePrivateDir(torDir);
  const paths = masterKeyPaths(torDir);
  const notes: string[] = [];
  const [hasFrontend, hasBridge] = await Promise.all([exists(paths.frontend), exists(paths.bridge)]);
  let choice: Omit<MasterKeyChoice, 'notes'>;
  if (hasFrontend) {
    choice = { file: paths.frontend, ...(await readMasterKey(paths.frontend)), source: 'frontend' };
    if (hasBridge) {
      const other = await readMasterKey(paths.bridge).catch(() => undefined);
      if (other && other.onion !== choice.onion) {
        notes.push(
          `${paths.bridge} (${other.onion}) is not used: this frontend already publishes ${choice.onion} from ` +
            `${paths.frontend}. To publish the bridge's address instead, move ${paths.frontend} away.`,
        );
      }
    }
  } else if (hasBridge) {
    // readMasterKey throws, saying what is missing, when the public key beside it is gone.
    choice = { file: paths.bridge, ...(await readMasterKey(paths.bridge)), source: 'bridge' };
  } else {
    await ensurePrivateDir(dirname(paths.frontend));
    const onion = await makeMasterKey(paths.frontend);
    choice = { file: paths.frontend, onion, format: 'pem', source: 'new' };
  }
  notes.push(...(await tighten(dirname(choice.file), 0o700)), ...(await tighten(choice.file, 0o600)));
  return { file: choice.file, onion: choice.onion, format: choice.format, source: choice.source, notes };
}

/** A folder only we can read, made if missing. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await tighten(dir, 0o700);
}

/** Sets `mode` when the file is looser (or just different), and says so. */
async function tighten(path: string, mode: number): Promise<string[]> {
  const st = await stat(path);
  if ((st.mode & 0o777) === mode) return [];
  await chmod(path, mode);
  return [`fixed the permissions of ${path} (${(st.mode & 0o777).toString(8)} -> ${mode.toString(8)})`];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
}
