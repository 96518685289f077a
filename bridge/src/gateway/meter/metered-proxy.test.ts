// The proxy with the meter in its hot path: allowance, payment headers, 402, the throttle's rate,
// and a payment lifting the throttle mid-download.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../log/logger.js';
import type { PaymentRequest } from '../../payments/types.js';
import { GatewayService } from '../gateway-service.js';
import { Meter } from './meter.js';

const MIB = 1024 * 1024;
const log = createLogger({ level: 'error' });

function req(id: string, now: number): PaymentRequest {
  return { id, service: 'tor', sessionId: 'S1', amount: 1n, asset: 'native', destination: 'G', memoHash: '00', creditBytes: 64 * MIB, createdAt: now, expiresAt: now + 60_000, status: 'open' };
}

interface Got { status: number; headers: Record<string, string | string[] | undefined>; bytes: number; seconds: number }
function get(port: number, path: string, headers: Record<string, string> = {}, onFirstByte?: () => void): Promise<Got> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let bytes = 0;
      res.once('data', () => onFirstByte?.());
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, bytes, seconds: (performance.now() - started) / 1000 }));
    })
      .on('error', reject)
      .end();
  });
}

describe('the metered proxy', () => {
  let upstream: Server;
  let gw: GatewayService;
  let meter: Meter;
  const RATE = 256 * 1024;

  beforeAll(async () => {
    upstream = createServer((q, s) => {
      const size = Number(new URL(q.url!, 'http://x').searchParams.get('size') ?? 1000);
      s.writeHead(200, { 'content-length': String(size) });
      s.end(Buffer.alloc(size, 1));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    let n = 0;
    meter = new Meter({
      freeBytes: 100_000,
      graceSeconds: 0,
      throttleBytesPerSec: RATE,
      service: 'tor',
      payments: { requestPayment: async () => ({ request: req(`req${++n}`, Date.now()), sessionToken: 'tok-S1' }), resolveSession: (t) => (t === 'tok-S1' ? 'S1' : undefined) },
    });
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 100,
      meter: { meter, paymentUrl: (_v, _h, id) => `http://api.test/v1/payment-requests/${id}`, requestJson: (r) => ({ id: r.id }) },
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    meter.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('serves the free allowance without payment headers, then points at the payment request', async () => {
    const first = await get(gw.httpPort(), '/?size=60000');
    expect(first.bytes).toBe(60000);
    expect(first.headers['torplus-payment-request']).toBeUndefined();
    await get(gw.httpPort(), '/?size=60000'); // crosses the allowance
    await new Promise((r) => setImmediate(r));
    const past = await get(gw.httpPort(), '/?size=10');
    expect(past.headers['torplus-payment-request']).toBe('http://api.test/v1/payment-requests/req1');
    expect(past.headers['torplus-session']).toBe('tok-S1');
    expect(String(past.headers['set-cookie'])).toContain('torplus_session=tok-S1; Path=/; HttpOnly');
  });

  it('answers 402 with the request to a client that asks for it', async () => {
    const r = await get(gw.httpPort(), '/?size=5000', { 'accept-payment': 'stellar' });
    expect(r.status).toBe(402);
    expect(r.headers['torplus-payment-request']).toBe('http://api.test/v1/payment-requests/req1');
  });

  it('throttles an unpaid visitor to the configured rate (±20%)', async () => {
    const size = 768 * 1024;
    const r = await get(gw.httpPort(), `/?size=${size}`);
    expect(r.bytes).toBe(size);
    const rate = size / r.seconds;
    expect(rate).toBeGreaterThan(RATE * 0.8);
    expect(rate).toBeLessThan(RATE * 1.25);
  });

  it('lifts the throttle at once when the payment completes mid-download', async () => {
    const size = 8 * MIB; // 32 s at the throttled rate
    let paidAt = 0;
    const download = get(gw.httpPort(), `/?size=${size}`, {}, () => {
      setTimeout(() => {
        const a = meter.account('ip:127.0.0.1');
        expect(a.throttled).toBe(true);
        const r = meter.request(a)!;
        paidAt = performance.now();
        meter.paymentComplete({ request: r, visitorKey: 'ip:127.0.0.1', receipt: { requestId: r.id, sessionId: 'S1', operationId: 'op', transactionHash: 'h', from: 'G', amount: 1n, creditBytes: 64 * MIB, via: 'hash', createdAt: 0 } });
      }, 300);
    });
    const r = await download;
    expect(r.bytes).toBe(size);
    expect(paidAt).toBeGreaterThan(0);
    expect(performance.now() - paidAt).toBeLessThan(3000);
    // A new connection with the session token is at full speed too.
    const next = await get(gw.httpPort(), `/?size=${MIB}`, { 'torplus-session': 'tok-S1' });
    expect(next.seconds).toBeLessThan(1);
  });
});
