// `torplus-bridge balance` at its edges, as a process (bridge/dist/cli.js: run scripts/setup.sh first):
// without DATABASE_URL it says so in one line and exits 2; an unreachable PostgreSQL is exit 1; the usage
// text lists it. Nothing here starts tor.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH } from '../src/devnet/bridge-process.js';
import { freePort } from '../src/util/free-port.js';

describe('torplus-bridge balance', () => {
  const dir = mkdtempSync(join(tmpdir(), 'torplus-balance-cli-'));
  // In a folder of its own: a .env in the working folder would be read too.
  const run = (env: Record<string, string>, args: string[]) =>
    spawnSync(process.execPath, [CLI_PATH, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 with one clear line when DATABASE_URL is missing, touching nothing', () => {
    const r = run({ TOR_DIR: join(dir, 'tor'), DATA_DIR: join(dir, 'data') }, ['balance']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^torplus-bridge balance: DATABASE_URL is not set: the frontend reads the live bridges from the PostgreSQL they share/)]);
    expect(existsSync(join(dir, 'tor'))).toBe(false);
  });

  it('exits 1, saying why, when PostgreSQL cannot be reached', async () => {
    const port = await freePort('127.0.0.1');
    const r = run({ TOR_DIR: join(dir, 'tor'), DATABASE_URL: `postgres://torplus@127.0.0.1:${port}/torplus` }, ['balance']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^torplus-bridge balance: cannot open the bridges' registry in PostgreSQL: .*ECONNREFUSED/);
  });

  it('is in the usage text', () => {
    const help = run({}, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^ {7}torplus-bridge balance$/m);
    expect(help.stdout).toMatch(/^ {2}balance +run the Onionbalance frontend/m);
  });
});
