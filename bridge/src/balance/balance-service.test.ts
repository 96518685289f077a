// BalanceService with a fake tor, a fake onionbalance and a fake registry: when onionbalance is (re)started
// and with what config.yaml, what is printed, what health says.
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureOnionKey } from '../tor/onion-key.js';
import { BalanceService, type BalanceServiceOptions } from './balance-service.js';
import type { FrontendTorHealth, FrontendTorOptions, FrontendTorPort } from './frontend-tor.js';
import type { OnionbalancePort, OnionbalanceProcessOptions, Upload } from './onionbalance-process.js';
import { captureLog, type CapturedLog } from './test-support/capture-log.js';

const o = (c: string): string => `${c.repeat(56)}.onion`;

class FakeTor extends EventEmitter implements FrontendTorPort {
  bootstrapped = false;
  controlPort: number | undefined;
  started = false;
  stopped = false;
  constructor(readonly options: FrontendTorOptions, private readonly order: string[]) {
    super();
  }
  async start(): Promise<void> {
    this.started = true;
    this.controlPort = 9001;
  }
  async stop(): Promise<void> {
    this.order.push('tor.stop');
    this.stopped = true;
  }
  bootstrap(port = this.controlPort ?? 9001): void {
    this.controlPort = port;
    this.bootstrapped = true;
    this.emit('bootstrapped');
  }
  crash(): void {
    this.bootstrapped = false;
    this.controlPort = undefined;
    this.emit('down');
  }
  health(): FrontendTorHealth {
    return { ok: this.bootstrapped, detail: this.bootstrapped ? 'bootstrapped' : 'bootstrapping 10%', bootstrapped: this.bootstrapped, progress: this.bootstrapped ? 100 : 10, controlPort: this.controlPort, pid: 1, restarts: 0 };
  }
}

class FakeOnionbalance extends EventEmitter implements OnionbalancePort {
  running = false;
  pid: number | undefined;
  restarts = 0;
  lastProblem = '';
  /** Each (re)start: the reason, the control port and config.yaml as it was then. */
  readonly starts: Array<{ reason: string; port: number | undefined; config: string }> = [];
  constructor(readonly options: OnionbalanceProcessOptions, private readonly order: string[]) {
    super();
  }
  async restart(reason: string): Promise<void> {
    this.starts.push({ reason, port: this.options.controlPort(), config: await readFile(this.options.configFile, 'utf8') });
    this.running = true;
    this.pid = 1000 + this.starts.length;
  }
  async stop(): Promise<void> {
    this.order.push('ob.stop');
    this.running = false;
    this.pid = undefined;
  }
  upload(instances: number): void {
    const u: Upload = { descriptor: 'first', at: Date.now(), instances };
    this.emit('uploaded', u);
  }
}

class FakeRegistry {
  onions: string[] = [];
  failure: Error | undefined;
  asked: number[] = [];
  async live(maxAgeMs: number): Promise<Array<{ id: string; onion: string }>> {
    this.asked.push(maxAgeMs);
    if (this.failure) throw this.failure;
    return this.onions.map((onion, i) => ({ id: `bridge-${i}`, onion }));
  }
}

let dir: string;
let cap: CapturedLog;
let registry: FakeRegistry;
let printed: string[];
let order: string[];
let tor: FakeTor;
let ob: FakeOnionbalance;
let service: BalanceService | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'torplus-balance-'));
  cap = captureLog();
  registry = new FakeRegistry();
  printed = [];
  order = [];
});
afterEach(async () => {
  await service?.stop();
  service = undefined;
  await rm(dir, { recursive: true, force: true });
});

function make(extra: Partial<BalanceServiceOptions> = {}): BalanceService {
  service = new BalanceService({
    torDir: join(dir, 'tor'),
    torBin: 'tor-not-used',
    registry,
    log: cap.log,
    print: (l) => printed.push(l),
    // Polls are driven by the test (poll()), not the timer.
    pollIntervalMs: 3_600_000,
    createTor: (x) => (tor = new FakeTor(x, order)),
    createOnionbalance: (x) => (ob = new FakeOnionbalance(x, order)),
    ...extra,
  });
  return service;
}

const configOf = (backends: string[], key: string): string =>
  [
    '# Written by torplus-bridge balance whenever the live backends change; edits here are lost.',
    'services:',
    `- key: ${key}`,
    '  instances:',
    ...backends.map((b) => `  - address: ${b.replace(/\.onion$/, '')}`),
    '',
  ].join('\n');

test('onionbalance starts only once tor is bootstrapped and a backend is live; config.yaml lists the live set', async () => {
  registry.onions = [o('b'), o('a')];
  const s = make();
  await s.start();
  expect(registry.asked).toEqual([30_000]);
  expect(ob.starts).toEqual([]);
  expect(s.health()).toMatchObject({ ok: false, torBootstrapped: false, onionbalanceRunning: false, backends: [o('a'), o('b')] });
  tor.bootstrap();
  await s.poll();
  const key = join(dir, 'tor', 'onionbalance', 'master.key');
  expect(ob.starts).toEqual([{ reason: 'tor bootstrapped', port: 9001, config: configOf([o('a'), o('b')], key) }]);
  expect(ob.options).toMatchObject({ masterOnion: s.masterOnion, testnet: false, configFile: join(dir, 'tor', 'onionbalance', 'config.yaml') });
  expect(tor.options.dir).toBe(join(dir, 'tor', 'balance-tor'));
});

test('restarted only when the SET changes: not for the same set again, in another order or with duplicates', async () => {
  registry.onions = [o('a'), o('b')];
  const s = make();
  await s.start();
  tor.bootstrap();
  await s.poll();
  expect(ob.starts).toHaveLength(1);
  for (const onions of [[o('a'), o('b')], [o('b'), o('a')], [o('a'), o('b'), o('a')]]) {
    registry.onions = onions;
    await s.poll();
  }
  expect(ob.starts).toHaveLength(1);
  registry.onions = [o('b')];
  await s.poll();
  expect(ob.starts).toHaveLength(2);
  expect(ob.starts[1]!.reason).toBe('the live backends changed');
  expect(ob.starts[1]!.config).toBe(configOf([o('b')], join(dir, 'tor', 'onionbalance', 'master.key')));
  registry.onions = [o('b'), o('c')];
  await s.poll();
  await s.poll();
  expect(ob.starts.map((x) => x.config.match(/address: (.)/g)?.length)).toEqual([2, 1, 2]);
  expect(s.health().backends).toEqual([o('b'), o('c')]);
});

test('with no live backend the last descriptor stays: no restart, config kept, one warning; back again without a restart', async () => {
  registry.onions = [o('a')];
  const s = make();
  await s.start();
  tor.bootstrap();
  await s.poll();
  const config = await readFile(join(dir, 'tor', 'onionbalance', 'config.yaml'), 'utf8');
  registry.onions = [];
  await s.poll();
  await s.poll();
  expect(ob.starts).toHaveLength(1);
  expect(await readFile(join(dir, 'tor', 'onionbalance', 'config.yaml'), 'utf8')).toBe(config);
  expect(ob.running).toBe(true);
  const warnings = (await cap.messages('warn')).filter((m) => /no live backends/.test(m));
  expect(warnings).toEqual(['no live backends (none beat within 30 s): keeping the last descriptor until one is back']);
  expect(s.health()).toMatchObject({ ok: false, detail: 'no live backends: keeping the last descriptor (from 1 backends)', backends: [o('a')], liveBackends: [] });
  registry.onions = [o('a')];
  await s.poll();
  expect(ob.starts).toHaveLength(1);
  expect(await cap.messages('info')).toContain('live backends again');
  expect(s.health().ok).toBe(true);
});

test('none live at start: tor runs, onionbalance waits for the first backend', async () => {
  const s = make();
  await s.start();
  tor.bootstrap();
  await s.poll();
  expect(ob.starts).toEqual([]);
  expect(s.health().detail).toMatch(/waiting for the first backend/);
  expect((await cap.messages('warn')).some((m) => /no live backends yet/.test(m))).toBe(true);
  registry.onions = [o('a')];
  await s.poll();
  expect(ob.starts).toHaveLength(1);
});

test('torplus=<master> and the sentence are printed once, on the first upload, not before', async () => {
  registry.onions = [o('a'), o('b')];
  const s = make({ domain: 'example.com' });
  await s.start();
  tor.bootstrap();
  await s.poll();
  expect(printed).toEqual([]);
  ob.upload(2);
  ob.upload(2);
  expect(printed).toEqual([
    `torplus=${s.masterOnion}`,
    'Publish the line above as a DNS TXT record on torplus.example.com so that TorPlus clients find this site: it is the address of every bridge behind this frontend.',
  ]);
  const h = s.health();
  expect(h).toMatchObject({ ok: true, masterOnion: s.masterOnion, keySource: 'new', torBootstrapped: true, onionbalanceRunning: true, backends: [o('a'), o('b')], liveBackends: [o('a'), o('b')] });
  expect(Date.now() - Date.parse(h.lastPublishAt!)).toBeLessThan(5_000);
  expect(h.detail).toBe(`publishing ${s.masterOnion} from 2 backends`);
  // A set change and a new upload print nothing more.
  registry.onions = [o('b')];
  await s.poll();
  ob.upload(1);
  expect(printed).toHaveLength(2);
  const uploads = cap.entries.filter((e) => e.message === 'master descriptor uploaded' && e.level === 'info');
  expect(uploads.map((e) => [e.backends, e.instances])).toEqual([[[o('a'), o('b')], 2], [[o('b')], 1]]);
});

test("an existing bridge key is the master; the master itself in the registry is never a backend", async () => {
  const address = await ensureOnionKey(join(dir, 'tor', 'hidden_service'));
  registry.onions = [address, o('a')];
  const s = make();
  await s.start();
  tor.bootstrap();
  await s.poll();
  expect(s.masterOnion).toBe(address);
  expect(s.health().keySource).toBe('bridge');
  expect(ob.starts[0]!.config).toBe(configOf([o('a')], join(dir, 'tor', 'hidden_service', 'hs_ed25519_secret_key')));
  expect((await cap.messages('warn')).filter((m) => m.includes(address))).toHaveLength(1);
});

test('--is-testnet follows TOR_EXTRA_CONFIG: on for a private test network, off otherwise', async () => {
  const fp = 'A'.repeat(40);
  const file = join(dir, 'extra.torrc');
  await writeFile(file, `TestingTorNetwork 1\nV3AuthVotingInterval 20\nDirAuthority a orport=1 no-v2 v3ident=${fp} 127.0.0.1:2 ${fp}\n`);
  await make({ extraConfigFile: file }).start();
  expect(ob.options.testnet).toBe(true);
  expect(tor.options.extraConfigFile).toBe(file);
  expect(service!.health().testnet).toBe(true);
  await service!.stop();
  await writeFile(file, 'ClientUseIPv6 1\n');
  service = undefined;
  await make({ extraConfigFile: file }).start();
  expect(ob.options.testnet).toBe(false);
});

test('tor dying stops onionbalance; the next bootstrap starts it on the new control port', async () => {
  registry.onions = [o('a')];
  const s = make();
  await s.start();
  tor.bootstrap(9001);
  await s.poll();
  tor.crash();
  await s.poll();
  expect(order).toEqual(['ob.stop']);
  expect(s.health().detail).toMatch(/^tor: /);
  tor.bootstrap(9002);
  await s.poll();
  expect(ob.starts.map((x) => x.port)).toEqual([9001, 9002]);
});

test('a registry that cannot be read keeps the set, warns once, and is reported in health', async () => {
  registry.onions = [o('a')];
  const s = make();
  await s.start();
  tor.bootstrap();
  await s.poll();
  registry.failure = new Error('connection refused');
  await s.poll();
  await s.poll();
  expect(ob.starts).toHaveLength(1);
  expect((await cap.messages('warn')).filter((m) => /cannot read the live backends/.test(m))).toHaveLength(1);
  expect(s.health()).toMatchObject({ ok: false, backends: [o('a')] });
  expect(s.health().detail).toMatch(/cannot read the registry \(connection refused\)/);
  registry.failure = undefined;
  await s.poll();
  expect(s.health().ok).toBe(true);
});

test('stop ends onionbalance, then tor, and polls no more', async () => {
  registry.onions = [o('a')];
  const s = make({ pollIntervalMs: 20 });
  await s.start();
  tor.bootstrap();
  await s.stop();
  expect(order).toEqual(['ob.stop', 'tor.stop']);
  const asked = registry.asked.length;
  await new Promise((r) => setTimeout(r, 100));
  expect(registry.asked.length).toBe(asked);
});

test('the timer polls every pollIntervalMs', async () => {
  registry.onions = [o('a')];
  const s = make({ pollIntervalMs: 20, maxBeatAgeMs: 5_000 });
  await s.start();
  await new Promise((r) => setTimeout(r, 150));
  expect(registry.asked.length).toBeGreaterThanOrEqual(4);
  expect(new Set(registry.asked)).toEqual(new Set([5_000]));
});
