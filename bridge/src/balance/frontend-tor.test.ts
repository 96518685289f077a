// The frontend tor as a real process, cut off from every network (DisableNetwork 1: it connects nowhere,
// so it never bootstraps, which is not what these tests look at): its torrc, the owning control
// connection, a restart after it is killed, and stop.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertPrivateTorConfig } from '../devnet/tornet-config.js';
import { FrontendTor } from './frontend-tor.js';
import { captureLog } from './test-support/capture-log.js';

let dir: string;
let tor: FrontendTor | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'torplus-frontend-tor-'));
});
afterEach(async () => {
  await tor?.stop();
  tor = undefined;
  await rm(dir, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function offline(extra = ''): Promise<string> {
  const text = `DisableNetwork 1\n${extra}`;
  assertPrivateTorConfig(text);
  const file = join(dir, 'extra.torrc');
  await writeFile(file, text);
  return file;
}

test('runs with no hidden service and no SOCKS port, owned over its control port; restarted when killed; gone on stop', async () => {
  const cap = captureLog();
  tor = new FrontendTor({ torBin: 'tor', dir: join(dir, 'balance-tor'), extraConfigFile: await offline(), log: cap.log, backoff: { initialMs: 100 } });
  let downs = 0;
  tor.on('down', () => downs++);
  await tor.start();
  const torrc = await readFile(join(dir, 'balance-tor', 'torrc'), 'utf8');
  expect(torrc).not.toMatch(/^HiddenService/m);
  expect(torrc).toMatch(/^SocksPort 0$/m);
  expect(torrc).toMatch(/^DisableNetwork 1$/m);
  const first = tor.health();
  expect(first).toMatchObject({ ok: false, bootstrapped: false, restarts: 0 });
  expect(first.detail).toMatch(/^bootstrapping \d+%/);
  expect(tor.controlPort).toBe(first.controlPort);
  expect(first.controlPort).toBeGreaterThan(0);
  const pid = first.pid!;
  expect(alive(pid)).toBe(true);

  process.kill(pid, 'SIGKILL');
  const end = Date.now() + 15_000;
  while (!(tor.health().pid && tor.health().pid !== pid && tor.controlPort)) {
    if (Date.now() > end) throw new Error(`tor was not restarted: ${JSON.stringify(tor.health())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(downs).toBe(1);
  expect(tor.health().restarts).toBe(1);
  const second = tor.health().pid!;
  await tor.stop();
  expect(alive(second)).toBe(false);
  expect(tor.controlPort).toBeUndefined();
  expect(downs).toBe(1);
}, 30_000);

test("a start that fails says why, in tor's words", async () => {
  tor = new FrontendTor({ torBin: 'tor', dir: join(dir, 'balance-tor'), extraConfigFile: await offline('NoSuchOption 1\n'), log: captureLog().log });
  await expect(tor.start()).rejects.toThrow(/exited \(code 1\) while starting[\s\S]*Unknown option 'NoSuchOption'/);
  expect(tor.health()).toMatchObject({ ok: false, pid: undefined });
}, 30_000);
