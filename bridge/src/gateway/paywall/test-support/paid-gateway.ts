// A metered gateway with the pay page, on the real parts in one process: the local ledger, the payments
// service, the meter, the pay page's server and the gateway (onion listener with PROXY lines, so each
// test visitor is a Tor circuit of its own). The site behind it is a small HTTP server.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLedger, type LedgerHandle } from '../../../devnet/ledger/ledger.js';
import { fundedAccount, type Funded } from '../../../devnet/ledger/testing.js';
import { createLogger } from '../../../log/logger.js';
import { PaymentsService } from '../../../payments/payments-service.js';
import { testConfig } from '../../../payments/test-support/fixtures.js';
import type { PaymentsConfig } from '../../../config/config.js';
import { meterPaymentPort, paywallPaymentPort } from '../../../ports.js';
import { GatewayService } from '../../gateway-service.js';
import { Meter } from '../../meter/meter.js';
import { PAY_PREFIX } from '../pay-page.js';
import { PaywallServer } from '../paywall-server.js';

export const FREE = 64 * 1024;
export const RATE = 16 * 1024;
export const PAGE = '<!doctype html><title>site</title><h1>the site</h1><img src="/img.bin">';

export interface PaidGateway {
  ledger: LedgerHandle;
  bridge: Funded;
  visitor: Funded;
  payments: PaymentsService;
  meter: Meter;
  gateway: GatewayService;
  paywall: PaywallServer | undefined;
  onionPort: number;
  close(): Promise<void>;
}

export interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  seconds: number;
}

/** Starts the whole chain. `paywall: false` is PAYWALL=throttle. */
export async function startPaidGateway(o: { paywall?: boolean; workers?: number; config?: Partial<PaymentsConfig> } = {}): Promise<PaidGateway> {
  const log = createLogger({ level: 'error' });
  const dir = mkdtempSync(join(tmpdir(), 'torplus-paywall-'));
  const site = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(PAGE);
    }
    const size = path === '/img.bin' ? 256 * 1024 : path === '/big.bin' ? 1024 * 1024 : 1000;
    res.writeHead(200, { 'content-type': path === '/img.bin' ? 'image/png' : 'application/octet-stream', 'content-length': size });
    res.end(Buffer.alloc(size, 7));
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', () => r()));
  const ledger = await startLedger({ port: 0 });
  const bridge = await fundedAccount(ledger);
  const visitor = await fundedAccount(ledger);
  const config = testConfig(bridge.keypair.secret(), {
    horizonUrl: ledger.url, freeBytes: FREE, graceSeconds: 0, throttleBytesPerSec: RATE, pricePerMibStroops: 10_000n, paymentMib: 10, ...o.config,
  });
  const payments = new PaymentsService({ config, dataDir: join(dir, 'data'), log });
  const meter = new Meter({ freeBytes: FREE, graceSeconds: 0, throttleBytesPerSec: RATE, service: 'tor', payments: meterPaymentPort(payments) });
  payments.on('complete', (e) => meter.paymentComplete(e));
  await payments.start();
  const paywall = o.paywall === false ? undefined : new PaywallServer({ payments: paywallPaymentPort(payments), throttleBytesPerSec: RATE, log });
  await paywall?.start();
  const gateway = new GatewayService({
    upstream: new URL(`http://127.0.0.1:${(site.address() as AddressInfo).port}`),
    wwwDir: dir, listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 100, workers: o.workers ?? 1,
    routes: () => (paywall ? [{ prefix: PAY_PREFIX, upstream: paywall.url(), metered: false }] : []),
    ...(paywall ? { paywall: { throttleBytesPerSec: RATE } } : {}),
    meter: { meter, paymentUrl: (_v, _h, id) => `http://api.test/v1/payment-requests/${id}`, requestJson: (r) => payments.requestJson(r) },
  });
  await gateway.start();
  const onionPort = Number(gateway.onionTarget().split(':')[1]);
  return {
    ledger, bridge, visitor, payments, meter, gateway, paywall, onionPort,
    async close() {
      await gateway.stop();
      await paywall?.stop();
      meter.close();
      await payments.stop();
      await ledger.close();
      await new Promise<void>((r) => site.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headers a browser sends for a top-level navigation, and for an image on the page. */
export const NAVIGATE = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'none' };
export const IMAGE = { accept: 'image/avif,image/webp,*/*;q=0.8', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image', 'sec-fetch-site': 'same-origin' };

/**
 * A request as Tor circuit `circuit` makes it: the PROXY line tor writes, then HTTP. `maxBytes` stops
 * reading (and closes) after that many body bytes, for throttled downloads.
 */
export function circuitRequest(
  port: number, circuit: number, path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; maxBytes?: number } = {},
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({
      host: 'onion.test', path, method: o.method ?? 'GET', headers: { host: 'site.onion', connection: 'close', ...o.headers },
      createConnection: () => {
        const s = connect(port, '127.0.0.1');
        s.write(`PROXY TCP6 fc00:dead:beef:4dad::${(circuit >>> 16).toString(16)}:${(circuit & 0xffff).toString(16)} ::1 5 80\r\n`);
        return s;
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), seconds: (performance.now() - started) / 1000 });
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (o.maxBytes !== undefined && n >= o.maxBytes) {
          res.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The session cookie a response set, as a Cookie header value. */
export function cookieOf(got: Got): string | undefined {
  const set = got.headers['set-cookie']?.find((c) => c.startsWith('torplus_session='));
  return set?.split(';')[0];
}
