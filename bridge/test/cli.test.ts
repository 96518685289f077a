import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH } from '../src/devnet/bridge-process.js';

const run = (env: Record<string, string>, args: string[] = []) =>
  spawnSync(process.execPath, [CLI_PATH, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });

describe('torplus-bridge CLI', () => {
  it.each([
    ['HTTP_PORT', 'eighty'],
    ['UPSTREAM_URL', 'ftp://web'],
    ['LOG_LEVEL', 'chatty'],
  ])('exits 2 with one line naming %s when it is %s', (name, value) => {
    const r = run({ [name]: value });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${name}:`);
    expect(lines[0]).toMatch(/expected/);
  });

  it('exits 2 with one clear line when PAYWALL_TEMPLATE is missing or lacks a required placeholder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-paywall-'));
    const missing = run({ PAYWALL_TEMPLATE: join(dir, 'nope.html'), DATA_DIR: dir });
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^.*PAYWALL_TEMPLATE: could not read .*nope\.html: ENOENT$/)]);
    writeFileSync(join(dir, 't.html'), '<html>{{head}}</html>');
    const lacking = run({ PAYWALL_TEMPLATE: join(dir, 't.html'), DATA_DIR: dir });
    expect(lacking.status).toBe(2);
    expect(lacking.stderr).toContain('the placeholder {{body}} is missing');
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 on an unknown command, and prints usage on --help', () => {
    expect(run({}, ['frobnicate']).status).toBe(2);
    const help = run({}, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: torplus-bridge');
  });
});
