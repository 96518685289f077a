// IPFS peers over Tor, as issue 5 is checked: bridge A (with a seed) serves a 2 MB file with a 100 kB free
// allowance for peers; bridge B (its own funded seed, PEERS = A's onion) fills from A over libp2p on
// /onion3, is asked to pay over /torplus/payment/1.0.0, pays within FILL_MAX_SPEND, and the fill completes.
// A's /v1/ipfs/peers shows B over an /onion3 multiaddr with at least 2 MB sent, and A's balance grows.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBridgeCommand, startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { startLedger, type LedgerHandle } from '../src/devnet/ledger/ledger.js';
import { balanceOf, fundedAccount, horizonFor } from '../src/devnet/ledger/testing.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';
import { until } from './support/wait.js';

jest.setTimeout(240_000);

const ADMIN = 'e2e-admin-token-ipfs-0123456789';

function getJson(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((res, rej) => {
    request({ host: '127.0.0.1', port, path, headers, agent: false }, (r) => {
      let t = '';
      r.on('data', (d) => (t += d));
      r.on('end', () => {
        try {
          res({ status: r.statusCode!, body: t ? JSON.parse(t) : undefined });
        } catch {
          res({ status: r.statusCode!, body: t });
        }
      });
    })
      .on('error', rej)
      .end();
  });
}

describe('IPFS peers over /onion3 with metered, paid bitswap', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-p2p-e2e-'));
  const file = randomBytes(2 * 1024 * 1024);
  let ledger: LedgerHandle;
  let a: BridgeProcess | undefined;
  let b: BridgeProcess | undefined;
  let c: BridgeProcess | undefined;
  let aPorts: number[];
  let bPorts: number[];
  let aAccount: string;
  let aOnion: string;
  let root: string;
  let bEnv: Record<string, string>;

  const env = (name: string, ports: number[], seed: string | undefined, extra: Record<string, string>) => ({
    WWW_DIR: join(dir, `www-${name}`),
    TOR_DIR: join(dir, `tor-${name}`),
    DATA_DIR: join(dir, `data-${name}`),
    TOR_EXTRA_CONFIG: net.joinConfigFile,
    LISTEN_HOST: '127.0.0.1',
    HTTP_PORT: String(ports[0]),
    API_PORT: String(ports[1]),
    ...(seed ? { seed } : {}),
    PP_ENV: 'local',
    HORIZON_URL: ledger.url,
    ADMIN_TOKEN: ADMIN,
    ...extra,
  });

  beforeAll(async () => {
    for (const n of ['a', 'b']) mkdirSync(join(dir, `www-${n}`), { recursive: true });
    writeFileSync(join(dir, 'www-a', 'big.bin'), file);
    writeFileSync(join(dir, 'www-a', 'index.html'), '<h1>A</h1>');
    writeFileSync(join(dir, 'www-b', 'index.html'), '<h1>B</h1>');
    ledger = await startLedger({ port: 0 });
    const [sa, sb] = [await fundedAccount(ledger), await fundedAccount(ledger)];
    aAccount = sa.address;
    [aPorts, bPorts] = [await freePorts(2), await freePorts(2)];
    a = startBridgeProcess({ env: env('a', aPorts, sa.keypair.secret(), { IPFS_FREE_BYTES: '100000', IPFS_PRICE_PER_MIB: '0.01', PAYMENT_MIB: '1', GRACE_SECONDS: '0' }) });
    aOnion = await a.published(90_000);
    await until('an ipfs= line from A', () => a!.lines.some((l) => l.startsWith('ipfs=')), { timeoutMs: 30_000 });
    root = a.lines.find((l) => l.startsWith('ipfs='))!.slice('ipfs=/ipfs/'.length);
    // One request puts A's root at the top of its list.
    await getJson(aPorts[0]!, `/ipfs/${root}/index.html`).catch(() => undefined);
    bEnv = env('b', bPorts, sb.keypair.secret(), { PEERS: aOnion, FILL_MAX_SPEND: '1', FILL_INTERVAL_SECONDS: '3600' });
    b = startBridgeProcess({ env: bEnv });
    await b.published(90_000);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(5000), b?.stop(5000), c?.stop(5000)]);
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints its libp2p address once: /onion3/<onion>:4001/p2p/<peer id>, also served at /v1/ipfs/id', async () => {
    const lines = a!.lines.filter((l) => l.startsWith('libp2p='));
    expect(lines).toHaveLength(1);
    const m = /^libp2p=\/onion3\/([a-z2-7]{56}):4001\/p2p\/(12D3Koo\w+)$/.exec(lines[0]!);
    expect(m?.[1]).toBe(aOnion.replace(/\.onion$/, ''));
    const id = await getJson(aPorts[1]!, '/v1/ipfs/id');
    expect(id.body).toEqual({ id: m![2], multiaddrs: [`/onion3/${m![1]}:4001/p2p/${m![2]}`] });
  });

  it('B fills from A over /onion3, pays A, and A shows B with ≥ 2 MB sent; A’s balance grows', async () => {
    const balance = async () => Number(await balanceOf(horizonFor(ledger), aAccount));
    const before = await balance();
    const fill = await runBridgeCommand(['fill'], bEnv, 200_000);
    expect(`${fill.code}\n${fill.stdout}${fill.stderr}`).toMatch(/^0\n/);
    expect(fill.stdout).toMatch(/^fill: 1 of 1 peer ok; [1-9]\d* DAGs? filled/m);
    // B's copy of A's file, from B's own gateway.
    const got = await new Promise<Buffer>((res, rej) =>
      request({ host: '127.0.0.1', port: bPorts[0], path: `/ipfs/${root}/big.bin`, agent: false }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (d: Buffer) => chunks.push(d));
        r.on('end', () => res(Buffer.concat(chunks)));
      }).on('error', rej).end(),
    );
    expect(got.equals(file)).toBe(true);

    const peers = await getJson(aPorts[1]!, '/v1/ipfs/peers', { Authorization: `Bearer ${ADMIN}` });
    expect(peers.status).toBe(200);
    const peer = peers.body.peers.find((p: any) => String(p.multiaddr ?? p.remoteAddr ?? '').startsWith('/onion3/'));
    expect(peer).toBeDefined();
    expect(peer.bytesSent).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    await until('A’s balance to grow', async () => (await balance()) > before, { timeoutMs: 30_000 });
    expect(await getJson(aPorts[1]!, '/v1/ipfs/peers')).toMatchObject({ status: 401 });
  });

  it('throttles a peer without a seed past the free allowance: it is asked to pay, declines, and stays throttled', async () => {
    const cPorts = await freePorts(2);
    mkdirSync(join(dir, 'www-c'), { recursive: true });
    writeFileSync(join(dir, 'www-c', 'index.html'), '<h1>C</h1>');
    const cEnv = env('c', cPorts, undefined, { PEERS: aOnion, FILL_INTERVAL_SECONDS: '3600' });
    c = startBridgeProcess({ env: cEnv });
    await c.published(90_000);
    const cId = await until('C’s peer ID', async () => (await getJson(cPorts[1]!, '/v1/ipfs/id')).body?.id as string | undefined);
    // The fill is cut short (killed) once A shows C throttled: 2 MB at 32 KiB/s would take a minute.
    const interrupt = new AbortController();
    const fill = runBridgeCommand(['fill'], cEnv, 60_000, interrupt.signal);
    const record = await until(
      'A to throttle C',
      async () => {
        const { body } = await getJson(aPorts[1]!, '/v1/ipfs/peers', { Authorization: `Bearer ${ADMIN}` });
        return (body.peers as any[]).find((p) => p.peerId === cId && p.throttled === true);
      },
      { timeoutMs: 35_000, intervalMs: 250 },
    );
    expect(Number(record.requestedStroops)).toBeGreaterThan(0);
    expect(Number(record.paidStroops)).toBe(0);
    expect(record.bytesSent).toBeGreaterThanOrEqual(100_000);
    expect(record.bytesSent).toBeLessThan(2 * 1024 * 1024);
    // Ctrl-C ends the fill (the bridge aborts it), with a non-zero code.
    interrupt.abort();
    expect((await fill).code).not.toBe(0);
  });
});
