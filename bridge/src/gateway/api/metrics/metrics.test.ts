// /metrics over real HTTP on 127.0.0.1: the bridge's ApiService (with its onion listener) and a fake
// source whose values the tests change between scrapes.
import { connect, Socket } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { Secret } from '../../../config/secret.js';
import { createLogger } from '../../../log/logger.js';
import { tagSocket } from '../../visitor.js';
import { ApiService } from '../api-service.js';
import { createBridgeMetrics, isLoopbackAddress, isLoopbackExempt, type BridgeMetrics, type MetricsSource } from './metrics.js';

type Values = {
  bytes: { free: number; paid: number } | undefined;
  visitors: { now: number; throttled: number } | undefined;
  payments: { requested: number; completed: number; earnedStroops: bigint } | undefined;
  tor: { bootstrapped: boolean; progress: number; restarts: number; published: boolean } | undefined;
  ipfs: { blocksServed: number; blocksFilled: number; filledBytes: number } | undefined;
  certificate: { daysLeft: number | null } | undefined;
};

function fakeSource(v: Values): MetricsSource {
  return {
    bytes: () => v.bytes,
    visitors: () => v.visitors,
    payments: () => v.payments,
    tor: () => v.tor,
    ipfs: () => v.ipfs,
    certificate: () => v.certificate,
  };
}

const initial = (): Values => ({
  bytes: { free: 1000, paid: 0 },
  visitors: { now: 3, throttled: 1 },
  payments: { requested: 2, completed: 1, earnedStroops: 12_345_678n },
  tor: { bootstrapped: false, progress: 45, restarts: 0, published: false },
  ipfs: { blocksServed: 10, blocksFilled: 4, filledBytes: 4096 },
  certificate: { daysLeft: 60 },
});

/** The exposition text, parsed: HELP and TYPE per metric, and every sample by its full series name. */
interface Scrape {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Map<string, number>;
}

function parse(text: string): Scrape {
  const s: Scrape = { help: new Map(), type: new Map(), samples: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.+)$/.exec(line);
    if (m) {
      s.help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      s.type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^(\S+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    s.samples.set(m[1]!, Number(m[2]));
  }
  return s;
}

const EXPECTED: Record<string, string> = {
  torplus_served_bytes_total: 'counter',
  torplus_visitors: 'gauge',
  torplus_visitors_throttled: 'gauge',
  torplus_payment_requests_total: 'counter',
  torplus_payments_completed_total: 'counter',
  torplus_payments_earned_xlm_total: 'counter',
  torplus_payment_verification_seconds: 'histogram',
  torplus_tor_bootstrapped: 'gauge',
  torplus_tor_bootstrap_ratio: 'gauge',
  torplus_onion_published: 'gauge',
  torplus_tor_restarts_total: 'counter',
  torplus_ipfs_blocks_served_total: 'counter',
  torplus_ipfs_blocks_filled_total: 'counter',
  torplus_ipfs_filled_bytes_total: 'counter',
  torplus_tls_certificate_remaining_days: 'gauge',
  // Per backend onion, behind a master (BALANCE_MASTER_ONION); no samples for a bridge on its own.
  torplus_instance_live: 'gauge',
  torplus_instance_visitors: 'gauge',
  torplus_instance_served_bytes: 'gauge',
};

const TOKEN = 'metrics-token-for-tests-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Bridge {
  values: Values;
  metrics: BridgeMetrics;
  api: ApiService;
  base: string;
}

async function startBridge(allowLoopbackWithoutToken: boolean): Promise<Bridge> {
  const values = initial();
  const metrics = createBridgeMetrics(fakeSource(values));
  const api = new ApiService({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'error' }), healthReport: () => ({}) });
  api.mount('/', metrics.router(new Secret(TOKEN), { allowLoopbackWithoutToken }));
  await api.start();
  return { values, metrics, api, base: `http://127.0.0.1:${api.port()}` };
}

async function scrape(b: Bridge): Promise<Scrape> {
  const res = await fetch(`${b.base}/metrics`, { headers: auth });
  expect(res.status).toBe(200);
  return parse(await res.text());
}

/** A request as tor sends it to the onion listener: the PROXY line with the circuit, then HTTP. */
function onionGet(target: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const [host, port] = target.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), host);
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!status) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      resolve({ status: Number(status[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`PROXY TCP6 fc00:dead:beef:4dad::ab:cd ::1 74 8000\r\nGET ${path} HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n${extra}\r\n`);
  });
}

describe('bridge metrics', () => {
  let locked: Bridge; // loopback exemption off
  let open: Bridge; // loopback exemption on

  beforeAll(async () => {
    locked = await startBridge(false);
    open = await startBridge(true);
  });
  afterAll(async () => {
    await locked?.api.stop();
    await open?.api.stop();
  });

  test('every metric is there, with HELP and the right TYPE, and the content type is the registry’s', async () => {
    const res = await fetch(`${locked.base}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(locked.metrics.registry.contentType);
    const s = parse(await res.text());
    for (const [name, type] of Object.entries(EXPECTED)) {
      expect([name, s.type.get(name)]).toEqual([name, type]);
      expect(s.help.get(name)?.length ?? 0).toBeGreaterThan(10);
    }
    // Nothing beyond the expected set, and every name is torplus_ snake_case.
    expect([...s.type.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const name of s.type.keys()) expect(name).toMatch(/^torplus_[a-z0-9_]+$/);
  });

  test('values follow the source; gauges move both ways; counters only go up', async () => {
    const b = locked;
    let s = await scrape(b);
    expect(s.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1000);
    expect(s.samples.get('torplus_served_bytes_total{tier="paid"}')).toBe(0);
    expect(s.samples.get('torplus_visitors')).toBe(3);
    expect(s.samples.get('torplus_visitors_throttled')).toBe(1);
    expect(s.samples.get('torplus_payment_requests_total')).toBe(2);
    expect(s.samples.get('torplus_payments_completed_total')).toBe(1);
    expect(s.samples.get('torplus_payments_earned_xlm_total')).toBeCloseTo(1.2345678, 9);
    expect(s.samples.get('torplus_tor_bootstrapped')).toBe(0);
    expect(s.samples.get('torplus_tor_bootstrap_ratio')).toBeCloseTo(0.45, 9);
    expect(s.samples.get('torplus_onion_published')).toBe(0);
    expect(s.samples.get('torplus_tor_restarts_total')).toBe(0);
    expect(s.samples.get('torplus_ipfs_blocks_served_total')).toBe(10);
    expect(s.samples.get('torplus_ipfs_blocks_filled_total')).toBe(4);
    expect(s.samples.get('torplus_ipfs_filled_bytes_total')).toBe(4096);
    expect(s.samples.get('torplus_tls_certificate_remaining_days')).toBe(60);

    b.values.bytes = { free: 1500, paid: 20_000 };
    b.values.visitors = { now: 1, throttled: 0 };
    b.values.payments = { requested: 5, completed: 3, earnedStroops: 50_000_000n };
    b.values.tor = { bootstrapped: true, progress: 100, restarts: 2, published: true };
    b.values.ipfs = { blocksServed: 11, blocksFilled: 4, filledBytes: 4096 };
    b.values.certificate = { daysLeft: 59 };
    s = await scrape(b);
    expect(s.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1500);
    expect(s.samples.get('torplus_served_bytes_total{tier="paid"}')).toBe(20_000);
    expect(s.samples.get('torplus_visitors')).toBe(1);
    expect(s.samples.get('torplus_visitors_throttled')).toBe(0);
    expect(s.samples.get('torplus_payment_requests_total')).toBe(5);
    expect(s.samples.get('torplus_payments_completed_total')).toBe(3);
    expect(s.samples.get('torplus_payments_earned_xlm_total')).toBeCloseTo(5, 9);
    expect(s.samples.get('torplus_tor_bootstrapped')).toBe(1);
    expect(s.samples.get('torplus_tor_bootstrap_ratio')).toBe(1);
    expect(s.samples.get('torplus_onion_published')).toBe(1);
    expect(s.samples.get('torplus_tor_restarts_total')).toBe(2);
    expect(s.samples.get('torplus_ipfs_blocks_served_total')).toBe(11);
    expect(s.samples.get('torplus_tls_certificate_remaining_days')).toBe(59);

    // A component that restarts starts its own totals again from zero: the exposed counters keep
    // going up, by what the source counted since.
    b.values.bytes = { free: 100, paid: 0 };
    b.values.tor = { bootstrapped: false, progress: 10, restarts: 1, published: false };
    b.values.ipfs = { blocksServed: 2, blocksFilled: 0, filledBytes: 0 };
    s = await scrape(b);
    expect(s.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1600);
    expect(s.samples.get('torplus_served_bytes_total{tier="paid"}')).toBe(20_000);
    expect(s.samples.get('torplus_tor_restarts_total')).toBe(3);
    expect(s.samples.get('torplus_ipfs_blocks_served_total')).toBe(13);
    expect(s.samples.get('torplus_tor_bootstrapped')).toBe(0);
    b.values.bytes = { free: 400, paid: 5 };
    s = await scrape(b);
    expect(s.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1900);
    expect(s.samples.get('torplus_served_bytes_total{tier="paid"}')).toBe(20_005);
    // Scraping again with no change adds nothing.
    s = await scrape(b);
    expect(s.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1900);
    expect(s.samples.get('torplus_tor_restarts_total')).toBe(3);
  });

  test('what the source does not know is left out, not shown as 0; a throwing getter breaks nothing else', async () => {
    const values = initial();
    values.ipfs = undefined;
    values.certificate = { daysLeft: null };
    const src = fakeSource(values);
    src.visitors = () => {
      throw new Error('supervisor not ready');
    };
    const m = createBridgeMetrics(src);
    let s = parse(await m.registry.metrics());
    expect(s.type.get('torplus_ipfs_blocks_served_total')).toBe('counter');
    expect(s.samples.has('torplus_ipfs_blocks_served_total')).toBe(false);
    expect(s.samples.has('torplus_tls_certificate_remaining_days')).toBe(false);
    expect(s.samples.has('torplus_visitors')).toBe(false);
    expect(s.samples.get('torplus_payment_requests_total')).toBe(2);

    values.ipfs = { blocksServed: 7, blocksFilled: 1, filledBytes: 10 };
    values.certificate = { daysLeft: -2 };
    values.tor = undefined;
    s = parse(await m.registry.metrics());
    expect(s.samples.get('torplus_ipfs_blocks_served_total')).toBe(7);
    expect(s.samples.get('torplus_ipfs_filled_bytes_total')).toBe(10);
    expect(s.samples.get('torplus_tls_certificate_remaining_days')).toBe(-2);
    expect(s.samples.has('torplus_tor_bootstrapped')).toBe(false);

    values.certificate = undefined;
    s = parse(await m.registry.metrics());
    expect(s.samples.has('torplus_tls_certificate_remaining_days')).toBe(false);
  });

  test('the verification histogram counts each observation in the right buckets', async () => {
    const m = createBridgeMetrics(fakeSource(initial()));
    for (const v of [0.0005, 0.003, 0.2, 0.2, 7, 20]) m.observeVerification(v);
    m.observeVerification(-1);
    m.observeVerification(Number.NaN);
    m.observeVerification(Number.POSITIVE_INFINITY);
    const s = parse(await m.registry.metrics());
    const bucket = (le: string) => s.samples.get(`torplus_payment_verification_seconds_bucket{le="${le}"}`);
    expect(bucket('0.001')).toBe(1);
    expect(bucket('0.0025')).toBe(1);
    expect(bucket('0.005')).toBe(2);
    expect(bucket('0.1')).toBe(2);
    expect(bucket('0.25')).toBe(4);
    expect(bucket('5')).toBe(4);
    expect(bucket('10')).toBe(5);
    expect(bucket('+Inf')).toBe(6);
    expect(s.samples.get('torplus_payment_verification_seconds_count')).toBe(6);
    expect(s.samples.get('torplus_payment_verification_seconds_sum')).toBeCloseTo(27.4035, 9);
    const les = [...s.samples.keys()].filter((k) => k.startsWith('torplus_payment_verification_seconds_bucket')).map((k) => /le="([^"]+)"/.exec(k)![1]);
    expect(les[0]).toBe('0.001');
    expect(les.at(-2)).toBe('10');
  });

  test('without the loopback exemption: 401 without the token or with a wrong one, 200 with the Bearer token', async () => {
    const no = await fetch(`${locked.base}/metrics`);
    expect(no.status).toBe(401);
    expect(no.headers.get('www-authenticate')).toBe('Bearer');
    expect(await no.text()).not.toContain('torplus_');
    expect((await fetch(`${locked.base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${locked.base}/metrics`, { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    expect((await fetch(`${locked.base}/metrics`, { headers: { authorization: 'Bearer ' } })).status).toBe(401);
    const yes = await fetch(`${locked.base}/metrics`, { headers: auth });
    expect(yes.status).toBe(200);
    expect(await yes.text()).toContain('torplus_visitors ');
  });

  test('with the loopback exemption: loopback needs no token, but a request over the onion still does', async () => {
    const res = await fetch(`${open.base}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('# TYPE torplus_tor_restarts_total counter');

    // tor connects to the onion listener from 127.0.0.1, yet this is a visitor from the Tor network.
    const onion = await onionGet(open.api.onionTarget(), '/metrics');
    expect(onion.status).toBe(401);
    expect(onion.body).not.toContain('torplus_');
    const onionAuthed = await onionGet(open.api.onionTarget(), '/metrics', auth);
    expect(onionAuthed.status).toBe(200);
    expect(onionAuthed.body).toContain('torplus_visitors ');
    // The onion path itself works without the exemption too.
    expect((await onionGet(locked.api.onionTarget(), '/metrics')).status).toBe(401);
  });

  test('loopback addresses, and which sockets are exempt', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) {
      expect([a, isLoopbackAddress(a)]).toEqual([a, true]);
    }
    for (const a of [undefined, '', '10.0.0.1', '128.0.0.1', '0.0.0.0', '1.127.0.0', '::', '::2', '::ffff:10.0.0.1', 'fc00:dead:beef:4dad::1', 'localhost', '127.0.0.1.evil']) {
      expect([a, isLoopbackAddress(a)]).toEqual([a, false]);
    }
    const withAddress = (address: string) => {
      const s = new Socket();
      Object.defineProperty(s, 'remoteAddress', { value: address });
      return s;
    };
    expect(isLoopbackExempt(withAddress('127.0.0.1'))).toBe(true);
    expect(isLoopbackExempt(withAddress('192.168.1.20'))).toBe(false);
    const fromTor = withAddress('127.0.0.1');
    tagSocket(fromTor, { kind: 'circuit', circuitId: 7 });
    expect(isLoopbackExempt(fromTor)).toBe(false);
    // Over HTTPS the request's socket is the TLS one; the circuit tag is on the raw socket beneath.
    const tls = withAddress('127.0.0.1');
    Object.defineProperty(tls, '_parent', { value: fromTor });
    expect(isLoopbackExempt(tls)).toBe(false);
  });

  test('two bridges in one process keep their own series; nothing lands on the global registry', async () => {
    const a = initial();
    const b = initial();
    b.bytes = { free: 5, paid: 6 };
    const ma = createBridgeMetrics(fakeSource(a));
    const mb = createBridgeMetrics(fakeSource(b), { processMetrics: true });
    ma.observeVerification(0.01);
    const sa = parse(await ma.registry.metrics());
    const sb = parse(await mb.registry.metrics());
    expect(ma.registry).not.toBe(mb.registry);
    expect(sa.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(1000);
    expect(sb.samples.get('torplus_served_bytes_total{tier="free"}')).toBe(5);
    expect(sa.samples.get('torplus_payment_verification_seconds_count')).toBe(1);
    expect(sb.samples.get('torplus_payment_verification_seconds_count')).toBe(0);
    // Process metrics only where asked for, and on that bridge's registry.
    expect(sb.type.get('torplus_process_cpu_user_seconds_total')).toBe('counter');
    expect(sa.type.has('torplus_process_cpu_user_seconds_total')).toBe(false);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
    expect((await globalRegistry.metrics()).trim()).toBe('');
  });
});
