// OnionbalanceProcess (and the supervision under it) with a fake onionbalance: a shell script that logs
// like onionbalance 0.2.2 does, records its command line, and exits when told to.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { OnionbalanceProcess, type OnionbalanceProcessOptions, type Upload } from './onionbalance-process.js';
import { captureLog, type CapturedLog } from './test-support/capture-log.js';

const master = `${'m'.repeat(56)}.onion`;
let dir: string;
let cap: CapturedLog;
let proc: OnionbalanceProcess | undefined;

/**
 * The fake: prints the lines the frontend waits for (the address its "key" gives comes from $DIR/onion),
 * then an upload; exits with code 3 after the upload while $DIR/crash exists; SIGTERM ends it cleanly.
 */
async function fakeOnionbalance(): Promise<string> {
  const bin = join(dir, 'fake-onionbalance');
  await writeFile(bin, `#!/bin/bash
log() { echo "$(date '+%Y-%m-%d %H:%M:%S'),000 [$1]: $2" >&2; }
echo "$$ $*" >> "${dir}/starts"
trap 'log INFO "Signal 15 received, exiting"; exit 0' TERM
log WARNING "Onionbalance configured on a testnet!"
log WARNING "Loaded onion $(cat "${dir}/onion") from /k"
log WARNING "Onionbalance initialized (stem version: 1.8.1) (tor version: 0.4.9.11)!"
sleep 0.2
log INFO "We got 4 intros from 2 instances. We want 4 intros ourselves (got: 4)"
log INFO "Uploading first descriptor for $(cat "${dir}/onion") to ['AB', 'CD']"
log ERROR "Something onionbalance complains about"
if [ -e "${dir}/crash" ]; then exit 3; fi
while true; do sleep 0.1; done
`);
  await chmod(bin, 0o755);
  return bin;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'torplus-obproc-'));
  cap = captureLog();
  await writeFile(join(dir, 'onion'), master);
});
afterEach(async () => {
  await proc?.stop();
  proc = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function make(extra: Partial<OnionbalanceProcessOptions> = {}): Promise<OnionbalanceProcess> {
  proc = new OnionbalanceProcess({
    bin: await fakeOnionbalance(),
    configFile: join(dir, 'config.yaml'),
    masterOnion: master,
    testnet: true,
    controlPort: () => 9051,
    log: cap.log,
    readyTimeoutMs: 5_000,
    stopGraceMs: 2_000,
    backoff: { initialMs: 100, maxMs: 400 },
    ...extra,
  });
  return proc;
}

const starts = async (): Promise<string[]> => (await readFile(join(dir, 'starts'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('started on the control port with config.yaml (--is-testnet here), ready once initialized; uploads reported; SIGTERM ends it', async () => {
  const p = await make();
  const uploads: Upload[] = [];
  p.on('uploaded', (u) => uploads.push(u));
  await p.restart('first');
  expect(p.running).toBe(true);
  const pid = p.pid!;
  const [line] = await starts();
  // setpriv exec'd the program: the pid we hold is onionbalance's own.
  expect(line).toBe(`${pid} --is-testnet -s ${join(dir, 'no-control-socket')} -i 127.0.0.1 -p 9051 -c ${join(dir, 'config.yaml')} -v info`);
  await until('an upload', () => uploads.length > 0);
  expect(uploads[0]).toMatchObject({ descriptor: 'first', instances: 2 });
  expect(Date.now() - uploads[0]!.at).toBeLessThan(5_000);
  // Its error at warn, its routine lines at debug.
  await until('its error line', async () => (await cap.messages('warn')).includes('onionbalance: Something onionbalance complains about'));
  expect(await cap.messages('debug')).toEqual(expect.arrayContaining(['onionbalance: Loaded onion ' + master + ' from /k', 'onionbalance: Onionbalance initialized (stem version: 1.8.1) (tor version: 0.4.9.11)!']));
  expect(await cap.messages('warn')).not.toContain(`onionbalance: Loaded onion ${master} from /k`);
  await p.stop();
  expect(alive(pid)).toBe(false);
  expect(p.running).toBe(false);
  expect(await cap.messages('debug')).toContain('onionbalance: Signal 15 received, exiting');
});

test('no --is-testnet for the real network', async () => {
  const p = await make({ testnet: false });
  await p.restart('first');
  expect((await starts())[0]).not.toContain('--is-testnet');
});

test('exiting on its own, it is started again with backoff, on the control port of the moment', async () => {
  let port = 9051;
  const p = await make({ controlPort: () => port });
  await writeFile(join(dir, 'crash'), '');
  await p.restart('first');
  port = 9052;
  await until('two restarts', async () => (await starts()).length >= 3 && p.restarts >= 2);
  const lines = await starts();
  expect(lines[1]).toContain('-p 9052');
  expect(await cap.messages('warn')).toContain('onionbalance exited unexpectedly; restarting');
  // Backoff: 100 ms, then 200 ms.
  expect((await cap.messages('info')).filter((m) => m.startsWith('restarting onionbalance in')).slice(0, 2)).toEqual(['restarting onionbalance in 100 ms', 'restarting onionbalance in 200 ms']);
  await rm(join(dir, 'crash'));
  await until('running again', () => p.running);
  const pid = p.pid!;
  await p.stop();
  expect(alive(pid)).toBe(false);
  const n = (await starts()).length;
  await new Promise((r) => setTimeout(r, 500));
  expect((await starts()).length).toBe(n);
});

test('a restart replaces the running process (config change)', async () => {
  const p = await make();
  await p.restart('first');
  const first = p.pid!;
  await p.restart('the live backends changed');
  expect(alive(first)).toBe(false);
  expect(p.pid).not.toBe(first);
  expect(p.running).toBe(true);
  expect(p.restarts).toBe(1);
  expect(await cap.messages('warn')).not.toContain('onionbalance exited unexpectedly; restarting');
});

test('a key that gives another address is a failed start, retried, with the reason', async () => {
  await writeFile(join(dir, 'onion'), `${'x'.repeat(56)}.onion`);
  const p = await make();
  await p.restart('first');
  expect(p.running).toBe(false);
  expect(p.lastProblem).toMatch(/its key gives x+\.onion, not the master m+\.onion/);
  await writeFile(join(dir, 'onion'), master);
  await until('the retry', () => p.running);
});

test('no tor, no start: retried until the control port is known', async () => {
  let port: number | undefined;
  const p = await make({ controlPort: () => port });
  await p.restart('first');
  expect(p.running).toBe(false);
  expect(p.lastProblem).toBe('the frontend tor is not running');
  port = 9051;
  await until('the retry', () => p.running);
});

test('an onionbalance that is not installed says so', async () => {
  const p = await make({ bin: join(dir, 'no-such-onionbalance') });
  await p.restart('first');
  expect(p.lastProblem).toMatch(/cannot run .*no-such-onionbalance: spawn .* ENOENT/);
});

test('it dies with the bridge, even when the bridge is killed outright (SIGKILL)', async () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const hook = join(here, '..', '..', 'test', 'support', 'ts-resolve.mjs');
  const child = spawn(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', '--import', hook, join(here, 'test-support', 'ob-child.ts'), await fakeOnionbalance(), join(dir, 'config.yaml'), master],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        const m = /^pid (\d+)$/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before starting onionbalance`)));
    });
    expect(alive(pid)).toBe(true);
    child.kill('SIGKILL');
    await exited;
    await until('onionbalance to die with its parent', () => !alive(pid), 3_000);
  } finally {
    child.kill('SIGKILL');
  }
}, 20_000);
