// Keys for one directory authority of the private Tor network: tor-gencert makes the v3 identity and signing
// keys (the v3ident of the DirAuthority line), and a tor with DisableNetwork 1 makes the relay identity and
// prints its fingerprint. Split out of tornet.ts.
//
// global-setup.ts loads tornet.ts (and so this file) with Node's type stripping: erasable syntax only.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileP } from './tor-process.js';
import type { AuthorityLine } from './tornet-config.js';

export interface Authority extends AuthorityLine {
  dataDir: string;
}

export interface AuthorityKeyOptions {
  name: string;
  dataDir: string;
  orPort: number;
  dirPort: number;
  torBin: string;
  gencertBin: string;
  /** An empty file, passed as --defaults-torrc and -f so nothing from /etc/tor is read. */
  emptyDefaults: string;
  signal?: AbortSignal;
}

/** Make the keys in DATADIR/keys (execFile, no shell) and read back v3ident and fingerprint. */
export async function makeAuthority(o: AuthorityKeyOptions): Promise<Authority> {
  const keysDir = path.join(o.dataDir, 'keys');
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const signal = o.signal ? { signal: o.signal } : {};
  await execFileP(
    o.gencertBin,
    ['--create-identity-key', '-m', '12', '-a', `127.0.0.1:${o.dirPort}`, '--passphrase-fd', '0'],
    { cwd: keysDir, input: '', ...signal },
  );
  // DisableNetwork 1: this tor only writes its keys and prints the fingerprint.
  await execFileP(
    o.torBin,
    [
      '--defaults-torrc', o.emptyDefaults, '-f', o.emptyDefaults,
      '--DisableNetwork', '1',
      '--list-fingerprint',
      '--orport', '1',
      '--dirserver', 'x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff',
      '--datadirectory', o.dataDir,
    ],
    signal,
  );
  const cert = await readFile(path.join(keysDir, 'authority_certificate'), 'utf8');
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
  const fpLine = (await readFile(path.join(o.dataDir, 'fingerprint'), 'utf8')).trim();
  const fingerprint = fpLine.split(/\s+/).slice(1).join('');
  if (!v3ident || !/^[0-9A-F]{40}$/.test(fingerprint)) {
    throw new Error(`tornet: could not read the keys of ${o.name} (v3ident ${v3ident}, fingerprint "${fpLine}")`);
  }
  return { name: o.name, dataDir: o.dataDir, orPort: o.orPort, dirPort: o.dirPort, v3ident, fingerprint };
}
