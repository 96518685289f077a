// `npm run ledger` as a process: `node bridge/dist/devnet/ledger/main.js` starts, serves, and stops on
// SIGTERM; bad arguments give one clear line and exit code 2.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Keypair } from '@stellar/stellar-sdk';

const HERE = dirname(fileURLToPath(import.meta.url)); // bridge/src/devnet/ledger
const REPO = join(HERE, '..', '..', '..', '..');
const DIST = join(REPO, 'bridge', 'dist', 'devnet', 'ledger');
const MAIN = join(DIST, 'main.js');

/**
 * `npm test` builds bridge/dist first (scripts/setup.sh). When this file runs alone and the ledger's build
 * is missing or older than its sources, compile just the ledger's files with tsconfig.build.json's options.
 */
function ensureBuilt(): void {
  const sources = readdirSync(HERE).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  const stale = sources.some((f) => {
    try {
      return statSync(join(DIST, f.replace(/\.ts$/, '.js'))).mtimeMs < statSync(join(HERE, f)).mtimeMs;
    } catch {
      return true;
    }
  });
  if (!stale) return;
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = [
    '--target', 'ES2023', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--strict',
    '--noUncheckedIndexedAccess', '--noImplicitOverride', '--esModuleInterop', '--skipLibCheck',
    '--isolatedModules', '--sourceMap', '--types', 'node',
    '--rootDir', join(REPO, 'bridge', 'src'), '--outDir', join(REPO, 'bridge', 'dist'),
  ];
  const r = spawnSync(process.execPath, [tsc, ...flags, ...sources.map((f) => join(HERE, f))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the ledger failed:\n${r.stdout}${r.stderr}`);
}

const env = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' });
const run = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { env: env(), encoding: 'utf8', timeout: 20_000 });

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'torplus-ledger-main-'));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('starts, serves Horizon, and stops cleanly on SIGTERM', async () => {
  const data = join(dir, 'data');
  const child = spawn(process.execPath, [MAIN, '--port', '0', '--data', data, '--passphrase', 'Main Test ; 2026'], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${lines.join('\n')}`)), 15_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        const m = /^ledger listening on (http:\/\/127\.0\.0\.1:\d+) \(network passphrase "Main Test ; 2026"\)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      createInterface({ input: child.stderr }).on('line', (line) => lines.push(`stderr: ${line}`));
      void exited.then((c) => reject(new Error(`exited early (${c}): ${lines.join('\n')}`)));
    });
    const root = (await (await fetch(`${url}/`)).json()) as { network_passphrase: string };
    expect(root.network_passphrase).toBe('Main Test ; 2026');
    const fb = await fetch(`${url}/friendbot?addr=${Keypair.random().publicKey()}`);
    expect(fb.status).toBe(200);
    // An open stream must not keep the process from stopping.
    const ac = new AbortController();
    const stream = await fetch(`${url}/payments?cursor=now`, { headers: { Accept: 'text/event-stream' }, signal: ac.signal });
    expect(stream.status).toBe(200);
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    ac.abort();
    expect(lines).toContain('ledger stopped (SIGTERM)');
    expect(statSync(data).mode & 0o777).toBe(0o700);
  } finally {
    child.kill('SIGKILL');
  }
});

it.each([
  [['--port', 'eighty'], /^ledger: --port: expected an integer from 0 to 65535$/],
  [['--port', '70000'], /^ledger: --port: expected an integer from 0 to 65535$/],
  [['--host', 'not a host'], /^ledger: --host: expected an IP address$/],
  [['--frobnicate'], /^ledger: Unknown option '--frobnicate'/],
])('exits 2 with one line for %j', (args, message) => {
  const r = run(args);
  expect(r.status).toBe(2);
  const errLines = r.stderr.trim().split('\n');
  expect(errLines).toHaveLength(1);
  expect(errLines[0]).toMatch(message);
});

it('prints usage on --help', () => {
  const r = run(['--help']);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('Usage: npm run ledger');
});

it('exits 1 with one line when the data directory belongs to another network', async () => {
  const data = join(dir, 'owned');
  const { startLedger } = await import('./ledger.js');
  await (await startLedger({ dataDir: data, networkPassphrase: 'One' })).close();
  const r = run(['--port', '0', '--data', data, '--passphrase', 'Two']);
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ledger: .*created for network passphrase "One"/)]);
});
