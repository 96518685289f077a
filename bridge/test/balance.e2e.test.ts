// `torplus-bridge balance` as a process, on a private Tor network of its own (3 authorities, 8 relays,
// 20 s voting: what onionbalance 0.2.2 needs, see balance/onionbalance-process.ts) with a throw-away PostgreSQL.
// Two backend onion services ("backend A", "backend B") are Onionbalance instances of the master; the test
// beats for them into the registry, as their bridges would. The master key is a single bridge's own
// (TOR_DIR/hidden_service), the case of a site moving from one bridge to several.
//
// Checked: the frontend prints torplus=<master> once it has published, the master answers through the
// network; when A stops beating the frontend republishes from B alone (config.yaml, its log, and a new
// visitor's tor, which gets only B although A is still up); SIGTERM ends it with exit 0 and leaves no tor
// or onionbalance behind. Measured times are printed.
//
// Slow (about 3–4 minutes on 2 cores): the network, then ~1 min for the first publish and ~1 min for the
// republish (a 30 s heartbeat window, a 10 s poll, ~20 s until onionbalance publishes again). Needs
// Debian's onionbalance and PostgreSQL; TORPLUS_SKIP_ONIONBALANCE=1 skips it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PgInstanceRegistry } from '../src/cluster/instances.js';
import { CLI_PATH, startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { startClientTor, type ClientTor } from '../src/devnet/client-tor.js';
import { onionbalanceAvailable } from '../src/balance/onionbalance-process.js';
import { startPostgres, type Postgres } from '../src/devnet/postgres.js';
import { socksGet, type FetchResult } from '../src/devnet/socks-http.js';
import { startOnionServiceTor, startTorNetwork, type OnionServiceTor, type TorNetwork } from '../src/devnet/tornet.js';
import { assertPrivateTorConfig } from '../src/devnet/tornet-config.js';
import { ensureOnionKey } from '../src/tor/onion-key.js';
import { isAlive, processTree } from './support/procfs.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { startLedger, type LedgerHandle } from '../src/devnet/ledger/ledger.js';
import { fundedAccount } from '../src/devnet/ledger/testing.js';
import { freePorts } from '../src/util/free-port.js';
import { until } from './support/wait.js';

const ADMIN = 'e2e-balance-admin-token-0123456789';

/** The reference client, as a visitor runs it. */
function runClient(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(path.dirname(CLI_PATH), 'client', 'cli.js'), ...args], { env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One sample of a bridge's /metrics (0 when absent). */
async function metric(api: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function earnings(api: number): Promise<{ creditedStroops: string; onChainStroops: string; unsettledTabStroops: string }> {
  return (await (await fetch(`http://127.0.0.1:${api}/v1/admin/earnings`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as never;
}

const skip = process.env.TORPLUS_SKIP_ONIONBALANCE === '1';
if (skip) console.log('TORPLUS_SKIP_ONIONBALANCE=1: skipping the balance end-to-end test');
const describeOb = skip ? describe.skip : describe;

const secs = (fromMs: number, toMs = performance.now()): string => ((toMs - fromMs) / 1000).toFixed(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** GET through `socksPort` until it answers; every try on circuits of its own (a new rendezvous). */
async function untilAnswer(url: string, socksPort: number, timeoutMs: number, tag: string): Promise<FetchResult & { tries: number }> {
  const end = performance.now() + timeoutMs;
  let lastError: unknown;
  for (let tries = 1; performance.now() < end; tries++) {
    const started = performance.now();
    try {
      return { ...(await socksGet(url, { socksPort, timeoutMs: 10_000, isolation: `${tag}-${tries}` })), tries };
    } catch (err) {
      lastError = err;
    }
    await sleep(Math.max(0, 1_000 - (performance.now() - started)));
  }
  throw new Error(`${url}: no answer within ${timeoutMs} ms; last error: ${(lastError as Error)?.message}`, { cause: lastError });
}

function backendServer(body: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface LogLine {
  level: string;
  message: string;
  at: number;
  [key: string]: unknown;
}

describeOb('torplus-bridge balance: one onion address for two backends (own private network, PostgreSQL)', () => {
  let net: TorNetwork | undefined;
  let postgres: Postgres | undefined;
  let registry: PgInstanceRegistry | undefined;
  let dbUrl = '';
  let dir = '';
  let torDir = '';
  let master = '';
  const servers: http.Server[] = [];
  let backendA: OnionServiceTor | undefined;
  let backendB: OnionServiceTor | undefined;
  let frontend: BridgeProcess | undefined;
  let visitor: ClientTor | undefined;
  let ledger: LedgerHandle | undefined;
  const bridges: Array<{ api: number; home: string; process: BridgeProcess }> = [];
  /** The frontend's log, parsed (JSON lines), with when each line arrived. */
  const log: LogLine[] = [];
  const beating = new Set<'a' | 'b'>();
  let beatTimer: NodeJS.Timeout | undefined;

  const backendOnion = (b: 'a' | 'b'): string => (b === 'a' ? backendA! : backendB!).onion;
  const configFile = (): string => path.join(torDir, 'onionbalance', 'config.yaml');
  const bare = (onion: string): string => onion.replace(/\.onion$/, '');

  /** The first log line after `since` that `match` accepts, waiting up to `timeoutMs`. */
  async function logLine(what: string, since: number, timeoutMs: number, match: (l: LogLine) => boolean): Promise<LogLine> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const hit = log.find((l) => l.at >= since && match(l));
      if (hit) return hit;
      if (frontend && frontend.child.exitCode !== null) throw new Error(`the frontend exited while waiting for ${what}:\n${frontend.lines.slice(-20).join('\n')}`);
      if (performance.now() > end) throw new Error(`no ${what} within ${timeoutMs} ms; the frontend's last lines:\n${frontend?.lines.slice(-20).join('\n')}`);
      await sleep(250);
    }
  }

  beforeAll(async () => {
    if (!onionbalanceAvailable() && !onionbalanceAvailable('/usr/sbin/onionbalance')) {
      throw new Error('onionbalance is not installed (Debian: apt-get install onionbalance). Set TORPLUS_SKIP_ONIONBALANCE=1 to skip this test.');
    }
    const t0 = performance.now();
    [net, postgres] = await Promise.all([startTorNetwork({ relays: 8, votingIntervalSec: 20 }), startPostgres()]);
    assertPrivateTorConfig(net.joinConfig);
    console.log(`own private network (3 authorities, 8 relays, 20 s voting) and PostgreSQL up in ${secs(t0)} s`);
    dbUrl = await postgres.createDatabase('balance');
    registry = await PgInstanceRegistry.open(dbUrl);
    dir = await mkdtemp(path.join(os.tmpdir(), 'torplus-balance-e2e-'));
    torDir = path.join(dir, 'tor');
    // A single bridge's key, as `torplus-bridge start` leaves it: the frontend must publish this address.
    master = await ensureOnionKey(path.join(torDir, 'hidden_service'));
    const [a, b] = await Promise.all([backendServer('backend A'), backendServer('backend B')]);
    servers.push(a, b);
    const start = (s: http.Server): Promise<OnionServiceTor> =>
      startOnionServiceTor({ joinConfig: net!.joinConfig, targetPort: (s.address() as AddressInfo).port, onionbalanceMaster: master });
    [backendA, backendB] = await Promise.all([start(a), start(b)]);
    // Their bridges' heartbeats (a bridge beats every few seconds).
    const beat = async (): Promise<void> => {
      for (const b of beating) {
        await registry!.beat({ id: `bridge-${b}`, onion: backendOnion(b), visitors: 0, bytesServed: 0 }).catch(() => {});
      }
    };
    beating.add('a').add('b');
    await beat();
    beatTimer = setInterval(() => void beat(), 3_000);
  }, 300_000);

  afterAll(async () => {
    clearInterval(beatTimer);
    for (const b of bridges) if (b.process.child.exitCode === null && b.process.child.signalCode === null) await b.process.stop(10_000);
    await ledger?.close();
    if (frontend && frontend.child.exitCode === null) await frontend.stop(10_000);
    // TORPLUS_BALANCE_LOG=FILE keeps the frontend's whole output (its log at debug) for a look afterwards.
    if (frontend && process.env.TORPLUS_BALANCE_LOG) await writeFile(process.env.TORPLUS_BALANCE_LOG, frontend.lines.join('\n') + '\n');
    await visitor?.stop();
    await Promise.all([backendA?.stop(), backendB?.stop()]);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await registry?.close();
    await postgres?.destroy();
    await net?.stop();
    if (dir && process.env.TORPLUS_KEEP_TORNET !== '1') await rm(dir, { recursive: true, force: true });
  }, 60_000);

  test('`balance` publishes the master (printed once as torplus=) and it answers through the network', async () => {
    const started = performance.now();
    frontend = startBridgeProcess({
      command: [process.execPath, CLI_PATH, 'balance'],
      env: { DATABASE_URL: dbUrl, TOR_DIR: torDir, TOR_EXTRA_CONFIG: net!.joinConfigFile, LOG_LEVEL: 'debug' },
      onLine: (line) => {
        if (!line.startsWith('{')) return;
        try {
          log.push({ ...(JSON.parse(line) as LogLine), at: performance.now() });
        } catch {
          /* not a log line */
        }
      },
    });
    expect(await frontend.published(240_000)).toBe(master);
    const publishedAt = performance.now();
    const answer = await untilAnswer(`http://${master}/`, net!.socksPort, 180_000, 'up');
    const answeredAt = performance.now();
    expect(answer.status).toBe(200);
    expect(['backend A', 'backend B']).toContain(answer.body.toString());
    const printed = frontend.lines.filter((l) => !l.startsWith('{'));
    expect(printed.filter((l) => l.startsWith('torplus='))).toEqual([`torplus=${master}`]);
    expect(printed[printed.indexOf(`torplus=${master}`) + 1]).toMatch(/^Publish the line above as a DNS TXT record on torplus\.<your domain>/);
    const config = await readFile(configFile(), 'utf8');
    expect(config).toContain(`- key: ${path.join(torDir, 'hidden_service', 'hs_ed25519_secret_key')}`);
    for (const b of ['a', 'b'] as const) expect(config).toContain(`address: ${bare(backendOnion(b))}`);
    expect(log.some((l) => l.message === 'frontend for ' + master && l.keySource === 'bridge' && l.testnet === true)).toBe(true);
    const bootstrapped = log.find((l) => l.message === 'frontend tor bootstrapped');
    console.log(
      `balance: frontend tor bootstrapped ${bootstrapped ? secs(started, bootstrapped.at) : '?'} s after start; torplus= printed ` +
        `${secs(started, publishedAt)} s after start; the master answered "${answer.body.toString()}" ${secs(started, answeredAt)} s ` +
        `after start (${answer.tries} tries)`,
    );
  }, 420_000);

  test('backend A stops beating: the frontend republishes from B alone, and a new visitor reaches only B', async () => {
    expect(frontend).toBeDefined();
    const a = backendOnion('a');
    const b = backendOnion('b');
    const stoppedAt = performance.now();
    beating.delete('a');
    const changed = await logLine('"the live backends changed" without A', stoppedAt, 120_000, (l) => l.message === 'the live backends changed' && JSON.stringify(l.removed) === JSON.stringify([a]));
    expect(changed.backends).toEqual([b]);
    const config = await readFile(configFile(), 'utf8');
    expect(config).toContain(`address: ${bare(b)}`);
    expect(config).not.toContain(bare(a));
    const uploaded = await logLine('a master descriptor from B alone', changed.at, 180_000, (l) => l.message === 'master descriptor uploaded' && l.level === 'info');
    expect(uploaded.backends).toEqual([b]);
    if (uploaded.instances !== undefined) expect(uploaded.instances).toBe(1);
    console.log(
      `backend A stopped beating: dropped from config.yaml ${secs(stoppedAt, changed.at)} s later (30 s heartbeat window, 10 s poll); ` +
        `master descriptor from B alone uploaded ${secs(stoppedAt, uploaded.at)} s after the last beat stopped ` +
        `(${secs(changed.at, uploaded.at)} s after the restart)`,
    );
    // A is still up (only its heartbeat stopped), so a visitor holding the old descriptor could still reach it;
    // a new visitor's tor fetches the new descriptor, which lists B alone.
    const t0 = performance.now();
    visitor = await startClientTor(net!.joinConfig);
    const first = await untilAnswer(`http://${master}/`, visitor.socksPort, 120_000, 'visitor');
    expect(first.body.toString()).toBe('backend B');
    for (let i = 0; i < 4; i++) {
      const r = await socksGet(`http://${master}/`, { socksPort: visitor.socksPort, timeoutMs: 30_000, isolation: `only-b-${i}` });
      expect(r.body.toString()).toBe('backend B');
    }
    console.log(`a new visitor reached the master ${secs(t0)} s after its tor started: "backend B" on 5 of 5 new circuits`);
    await visitor.stop();
    visitor = undefined;
    // And the network's own client, which may still hold the old descriptor, still gets an answer.
    const old = await untilAnswer(`http://${master}/`, net!.socksPort, 60_000, 'old-client');
    expect(['backend A', 'backend B']).toContain(old.body.toString());
  }, 420_000);

  test('two bridges as backends, payments in PostgreSQL: a client pays once (tab), the bridge that served it is killed with kill -9, the other serves the same session without a new payment', async () => {
    expect(frontend).toBeDefined();
    // The plain backends go; two real bridges take their place (they beat themselves).
    beating.clear();
    await Promise.all([backendA?.stop(), backendB?.stop()]);
    backendA = backendB = undefined;
    ledger = await startLedger({ port: 0 });
    const publisher = await fundedAccount(ledger);
    const payer = await fundedAccount(ledger);
    const www = path.join(dir, 'www');
    await mkdir(www, { recursive: true });
    const file = randomBytes(2 * 1024 * 1024);
    await writeFile(path.join(www, 'big.bin'), file);
    await writeFile(path.join(www, 'index.html'), '<h1>one address, two bridges</h1>');
    const started = performance.now();
    for (let i = 0; i < 2; i++) {
      const [http, api] = (await freePorts(2)) as [number, number];
      const home = path.join(dir, `bridge-${i}`);
      bridges.push({
        api, home,
        process: startBridgeProcess({
          env: {
            WWW_DIR: www, TOR_DIR: path.join(home, 'tor'), DATA_DIR: path.join(home, 'data'), TOR_EXTRA_CONFIG: net!.joinConfigFile,
            LISTEN_HOST: '127.0.0.1', HTTP_PORT: String(http), API_PORT: String(api), IPFS_ENABLED: 'false', PROXY_WORKERS: '1',
            seed: publisher.keypair.secret(), PP_ENV: 'local', HORIZON_URL: ledger.url, DATABASE_URL: dbUrl, BALANCE_MASTER_ONION: master,
            FREE_BYTES: '262144', GRACE_SECONDS: '0', THROTTLE_BYTES_PER_SEC: '32768', PRICE_PER_MIB: '0.01', PAYMENT_MIB: '10',
            TAB_SETTLE_SECONDS: '2', ADMIN_TOKEN: ADMIN,
          },
        }),
      });
    }
    for (const b of bridges) expect(await b.process.published(120_000)).toBe(master); // their torplus= line is the master
    const onions = await Promise.all(bridges.map((b) => readFile(path.join(b.home, 'tor', 'hidden_service', 'hostname'), 'utf8').then((t) => t.trim())));
    const both = await logLine('a master descriptor from the two bridges', started, 240_000,
      (l) => l.message === 'master descriptor uploaded' && JSON.stringify([...((l.backends as string[]) ?? [])].sort()) === JSON.stringify([...onions].sort()));
    console.log(`two bridges: in the master descriptor ${secs(started, both.at)} s after they started`);

    // A visitor with a tor of its own: the network's client still holds descriptors of the plain backends.
    visitor = await startClientTor(net!.joinConfig);
    const socks = visitor.socksPort;
    await untilAnswer(`http://${master}/`, socks, 120_000, 'payer');
    const sessionFile = path.join(dir, 'client-session');
    const client = (out: string) => runClient(['fetch', `http://${master}/big.bin`, '--socks', `127.0.0.1:${socks}`, '--horizon', ledger!.url,
      '--max-spend', '1', '--mode', 'tab', '--session-file', sessionFile, '-o', path.join(dir, out)], { TORPLUS_SEED: payer.keypair.secret(), TORPLUS_HOME: path.join(dir, 'client-home') });
    const first = await client('first.bin');
    if (first.code !== 0) console.log(`the client failed (${first.code}):\n${first.stdout}\n${first.stderr}`);
    expect(first.code).toBe(0);
    expect(await readFile(path.join(dir, 'first.bin'))).toEqual(file);
    expect(first.stdout).toMatch(/paid 0\.\d+ XLM in \d+ tab payment/);
    const paidBytes = await Promise.all(bridges.map((b) => metric(b.api, 'torplus_served_bytes_total{tier="paid"}')));
    const served = paidBytes.findIndex((n) => n > 0);
    expect(served).toBeGreaterThanOrEqual(0);
    const earnedBefore = await earnings(bridges[1 - served]!.api);

    // kill -9 the bridge that served the paid bytes: its tor dies with it (owning controller).
    const killedAt = performance.now();
    process.kill(bridges[served]!.process.pid, 'SIGKILL');
    await bridges[served]!.process.exited;
    const second = await client('second.bin');
    const tookSeconds = (performance.now() - killedAt) / 1000;
    if (second.code !== 0) console.log(`the client failed (${second.code}):\n${second.stdout}\n${second.stderr}`);
    expect(second.code).toBe(0);
    expect(await readFile(path.join(dir, 'second.bin'))).toEqual(file);
    // The same session, still paid: no new payment (the paid credit is in PostgreSQL, leased by the other bridge).
    expect(second.stdout).toMatch(/paid nothing/);
    // …served from the session's paid credit (the paid tier) by the surviving bridge, at full speed.
    expect(await metric(bridges[1 - served]!.api, 'torplus_served_bytes_total{tier="paid"}')).toBeGreaterThan(0);
    console.log(`kill -9 of the serving bridge: the client's next fetch (2 MiB, same session, no payment) done ${tookSeconds.toFixed(1)} s later`);

    // The tab is settled once (by whichever bridge leads settlement now), and the earnings count it once.
    const settled = await until('the tab settled on the ledger', async () => {
      const e = await earnings(bridges[1 - served]!.api);
      return Number(e.onChainStroops) > 0 && Number(e.unsettledTabStroops) === 0 && e;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(settled.creditedStroops).toBe(earnedBefore.creditedStroops);
    expect(settled.onChainStroops).toBe(settled.creditedStroops);
    await visitor.stop();
    visitor = undefined;
  }, 600_000);

  test('SIGTERM: exit 0 within 10 s, no tor or onionbalance left', async () => {
    expect(frontend).toBeDefined();
    const tree = processTree(frontend!.pid).filter((p) => p !== frontend!.pid);
    const names = await Promise.all(tree.map((p) => readFile(`/proc/${p}/comm`, 'utf8').then((s) => s.trim(), () => '?')));
    expect(names).toEqual(expect.arrayContaining(['tor', 'onionbalance']));
    const t0 = performance.now();
    const code = await frontend!.stop(15_000);
    const took = performance.now() - t0;
    expect(code).toBe(0);
    expect(took).toBeLessThan(10_000);
    expect(tree.filter(isAlive)).toEqual([]);
    console.log(`SIGTERM: exited 0 in ${secs(t0)} s; its children (${names.join(', ')}) are gone`);
  }, 60_000);
});
