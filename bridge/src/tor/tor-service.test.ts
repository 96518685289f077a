import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../log/logger.js';
import type { BootstrapPhase } from './events.js';
import { type BootstrapProgress, TorService, type TorServiceOptions } from './tor-service.js';
import { alive } from '../../test/support/wait.js';

// Tor's own output at error level would clutter the test output; keep it for failing tests.
const logged = new PassThrough();
const logLines: string[] = [];
logged.on('data', (d: Buffer) => logLines.push(d.toString()));
const log = createLogger({ level: 'error', stream: logged, json: true });

const root = mkdtempSync(join(tmpdir(), 'torsvc-'));
// Offline: every real tor in these tests gets DisableNetwork 1 through the extra config file.
const offline = join(root, 'offline.torrc');
writeFileSync(offline, 'DisableNetwork 1\n');

const services: TorService[] = [];
function service(over: Partial<TorServiceOptions> = {}): TorService {
  const s = new TorService({
    torBin: 'tor',
    // A space and '#' in the path: the torrc must quote it for tor to read it right.
    torDir: join(root, 'my tor #1'),
    ports: [{ virtualPort: 80, target: '127.0.0.1:1' }],
    extraConfigFile: offline,
    powDefense: true,
    introDosDefense: true,
    log,
    backoff: { initialMs: 100 },
    ...over,
  });
  services.push(s);
  return s;
}

const mode = (p: string) => statSync(p).mode & 0o777;

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('TorService with a real tor (DisableNetwork 1)', () => {
  it('knows the onion address before tor starts: tor serves the key made for it, and a second prepare keeps it', async () => {
    const s = service({ torDir: join(root, 'prepared') });
    const address = await s.prepareAddress();
    expect(address).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(mode(join(root, 'prepared', 'hidden_service', 'hs_ed25519_secret_key'))).toBe(0o600);
    await s.start();
    // tor computed the address from our key itself (hostname is rewritten by tor on start).
    expect(s.onionAddress()).toBe(address);
    expect(readFileSync(join(root, 'prepared', 'hidden_service', 'hostname'), 'utf8').trim()).toBe(address);
    await s.stop();
    expect(await service({ torDir: join(root, 'prepared') }).prepareAddress()).toBe(address);
  });

  it('starts, reports health, keeps its address and key across stop/start, and stops cleanly', async () => {
    const s = service();
    await s.start();
    const address = s.onionAddress();
    expect(address).toMatch(/^[a-z2-7]{56}\.onion$/);
    const h = s.health();
    expect(h).toMatchObject({ ok: true, bootstrapped: false, progress: 0, published: false, address, restarts: 0 });
    expect(h.detail).toMatch(/bootstrapping 0%/);
    const pid = h.pid!;
    expect(alive(pid)).toBe(true);

    const dir = join(root, 'my tor #1');
    const hs = join(dir, 'hidden_service');
    expect(mode(hs)).toBe(0o700);
    expect(mode(join(hs, 'hs_ed25519_secret_key'))).toBe(0o600);
    expect(mode(join(dir, 'data'))).toBe(0o700);
    expect(readFileSync(join(dir, 'torrc'), 'utf8')).toMatch(/HiddenServiceExportCircuitID haproxy\n[\s\S]*DisableNetwork 1\n$/);

    await s.stop();
    expect(alive(pid)).toBe(false);
    expect(s.health()).toMatchObject({ ok: false, pid: undefined });
    await s.stop(); // idempotent

    // Someone loosened the permissions in between: start() tightens them again.
    chmodSync(join(hs, 'hs_ed25519_secret_key'), 0o644);
    chmodSync(hs, 0o755);
    const again = service();
    await again.start();
    expect(again.onionAddress()).toBe(address);
    expect(mode(hs)).toBe(0o700);
    expect(mode(join(hs, 'hs_ed25519_secret_key'))).toBe(0o600);
    const pid2 = again.health().pid!;
    await again.stop();
    expect(alive(pid2)).toBe(false);
  });

  it('restarts a killed tor with a new pid and the same address', async () => {
    const s = service();
    await s.start();
    const { pid, address } = s.health();
    const restarted = new Promise<{ restarts: number; pid: number }>((r) => s.once('restart', r));
    const exited = new Promise<{ expected: boolean }>((r) => s.once('exit', r));
    process.kill(pid!, 'SIGKILL');
    expect(await exited).toMatchObject({ expected: false });
    const ev = await restarted;
    expect(ev.pid).not.toBe(pid);
    expect(alive(ev.pid)).toBe(true);
    expect(s.health()).toMatchObject({ ok: true, restarts: 1, address, pid: ev.pid });
    await s.stop();
    expect(alive(ev.pid)).toBe(false);
    // The same instance can be started again after stop().
    await s.start();
    expect(s.health()).toMatchObject({ ok: true, address });
  });

  it('keeps retrying with backoff while the restarted tor fails, then recovers', async () => {
    const extra = join(root, 'flaky.torrc');
    writeFileSync(extra, 'DisableNetwork 1\n');
    const s = service({ torDir: join(root, 'flaky'), extraConfigFile: extra, backoff: { initialMs: 50, maxMs: 200 } });
    await s.start();
    const { pid, address } = s.health();
    // The extra config is re-read on every restart: break it, then kill tor.
    writeFileSync(extra, 'DisableNetwork 1\nBrokenOption 1\n');
    const exits: boolean[] = [];
    s.on('exit', (e) => exits.push(e.expected));
    process.kill(pid!, 'SIGKILL');
    for (let i = 0; i < 200 && exits.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    // One unexpected exit, then failed restarts (expected exits: launch() handles those).
    expect(exits[0]).toBe(false);
    expect(exits.length).toBeGreaterThanOrEqual(3);
    expect(s.health()).toMatchObject({ ok: false });
    expect(s.health().detail).toMatch(/tor restarting: .*BrokenOption/);
    const restarted = new Promise<{ restarts: number; pid: number }>((r) => s.once('restart', r));
    writeFileSync(extra, 'DisableNetwork 1\n');
    const ev = await restarted;
    expect(ev.restarts).toBeGreaterThanOrEqual(3);
    expect(s.health()).toMatchObject({ ok: true, address, pid: ev.pid });
  });

  it('rejects clearly, with tor\'s own words, on a broken extra config line; no tor is left', async () => {
    const bad = join(root, 'bad.torrc');
    writeFileSync(bad, 'DisableNetwork 1\nThisIsNotAnOption 1\n');
    const s = service({ torDir: join(root, 'bad'), extraConfigFile: bad });
    const err = (await s.start().catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/tor exited during startup \(code 1\)/);
    expect(err.message).toMatch(/Unknown option 'ThisIsNotAnOption'/);
    if (process.env.SHOW_TOR_ERRORS) console.log(err.message);
    expect(s.health()).toMatchObject({ ok: false, pid: undefined });
    expect(s.health().detail).toMatch(/failed/);
  });

  it('rejects clearly when the extra config file or the tor binary is missing', async () => {
    const a = service({ torDir: join(root, 'm1'), extraConfigFile: join(root, 'nope.torrc') });
    await expect(a.start()).rejects.toThrow(/cannot read the extra tor config .*nope\.torrc/);
    const b = service({ torDir: join(root, 'm2'), torBin: join(root, 'no-such-tor') });
    await expect(b.start()).rejects.toThrow(/cannot run .*no-such-tor: .*ENOENT/);
  });

  it('stop() during start() aborts it and leaves no tor behind', async () => {
    const s = service({ torDir: join(root, 'abort') });
    const starting = s.start();
    const failed = starting.catch((e: unknown) => e);
    // Stop as soon as tor was spawned, before its control port is up.
    for (let i = 0; i < 200 && s.health().pid === undefined; i++) await new Promise((r) => setTimeout(r, 2));
    const pid = s.health().pid;
    expect(pid).toBeDefined();
    const published = s.whenPublished().catch((e: unknown) => e);
    await s.stop();
    expect(await failed).toEqual(new Error('tor service stopping'));
    expect(await published).toEqual(new Error('tor service stopped before the onion service was published'));
    expect(alive(pid!)).toBe(false);
  });

  it('honours an aborted start signal', async () => {
    const s = service({ torDir: join(root, 'sig') });
    await expect(s.start(AbortSignal.abort(new Error('supervisor gave up')))).rejects.toThrow('supervisor gave up');
    expect(s.health().pid).toBeUndefined();
  });
});

describe('TorService bootstrap and publication (scripted fake tor)', () => {
  // What an offline tor cannot show: progress events and HS_DESC UPLOADED for our address.
  const fake = fileURLToPath(new URL('./fixtures/fake-tor.mjs', import.meta.url));
  const torBin = join(root, 'fake-tor');
  writeFileSync(torBin, `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`, { mode: 0o755 });

  it('tracks bootstrap, calls progress, emits published and resolves whenPublished', async () => {
    const progress: BootstrapProgress[] = [];
    const s = service({ torBin, torDir: join(root, 'fake'), progress: (p) => progress.push(p) });
    const phases: BootstrapPhase[] = [];
    s.on('bootstrap', (p) => phases.push(p));
    const published: string[] = [];
    s.on('published', (a) => published.push(a));
    await s.start();
    const address = await s.whenPublished(AbortSignal.timeout(5000));
    expect(address).toBe(s.onionAddress());
    expect(progress.map((p) => p.progress)).toEqual([0, 10, 50, 75, 100]);
    expect(progress[2]).toEqual({ progress: 50, summary: 'Loading relay descriptors' });
    expect(phases.at(-1)).toMatchObject({ progress: 100, tag: 'done' });
    await new Promise((r) => setTimeout(r, 100)); // the second HSDir's upload
    expect(published).toEqual([address, address]); // not the other service's upload
    expect(s.health()).toMatchObject({ ok: true, bootstrapped: true, progress: 100, published: true, detail: 'onion service published' });
    expect(await s.whenPublished()).toBe(address); // already published: at once
  });

  it('stop() sends SIGKILL to a tor that ignores SIGTERM', async () => {
    const extra = join(root, 'stubborn.torrc');
    writeFileSync(extra, 'FakeTorIgnoreSigterm 1\n');
    const out = new PassThrough();
    const warnings: string[] = [];
    out.on('data', (d: Buffer) => warnings.push(d.toString()));
    const warnLog = createLogger({ level: 'warn', stream: out, json: true });
    const s = service({ torBin, torDir: join(root, 'stubborn'), extraConfigFile: extra, stopTimeoutMs: 300, log: warnLog });
    await s.start();
    const pid = s.health().pid!;
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(alive(pid)).toBe(false);
    expect(warnings.join('')).toMatch(/did not exit within 300 ms of SIGTERM; sending SIGKILL/);
  });
});
