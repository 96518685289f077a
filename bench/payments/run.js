#!/usr/bin/env node
// bench/payments: `npm run bench:payments`. Prints three figures, each beside its reference:
//   1. tab verifications per second on one core (bench/payments/tab-verify.js, against raw
//      node:crypto Ed25519 verify in the same run; goal ≥ 3,000/s);
//   2. the time from a payment submitted (signed XDR to the API) to the throttle lifted, on the
//      local ledger, median and p99 (goal p50 ≤ 200 ms);
//   3. the measured throttle rate against the configured one (goal within ±20%).
// Everything runs on loopback: the local ledger, the bridge's payments service, meter, proxy and API
// in this process, and a node:http upstream. Nothing is asserted: the machines are noisy.
import { Asset, Keypair, Memo, Operation, TransactionBuilder } from '@stellar/stellar-sdk';
import { spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'bridge', 'dist', p));
const { startLedger } = await dist('devnet/ledger/ledger.js');
const { PaymentsService } = await dist('payments/payments-service.js');
const { Meter } = await dist('gateway/meter/meter.js');
const { GatewayService } = await dist('gateway/gateway-service.js');
const { ApiService } = await dist('gateway/api/api-service.js');
const { paymentsRouter } = await dist('gateway/api/payments-routes.js');
const { createLogger } = await dist('log/logger.js');
const { Secret } = await dist('config/secret.js');

const RUNS = Number(process.env.BENCH_PAYMENTS ?? 40);
const FREE = 64 * 1024;
const RATE = 64 * 1024;
const log = createLogger({ level: 'error' });

// --- 1. tab verification ------------------------------------------------------------------------
console.log('1. tab verifications per second (one core)');
const tab = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--experimental-strip-types', join(ROOT, 'bench', 'payments', 'tab-verify.js')], {
  encoding: 'utf8',
  env: { ...process.env, BENCH_TABS: process.env.BENCH_TABS ?? '3000' },
});
process.stdout.write(tab.stdout.split('\n').map((l) => '   ' + l).join('\n') + '\n');
if (tab.status !== 0) process.stdout.write(tab.stderr);

// --- the bridge's payment path, in process ------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'bench-pay-'));
const ledger = await startLedger({ port: 0 });
const bridgeKp = Keypair.random();
const payer = Keypair.random();
await ledger.friendbot(bridgeKp.publicKey());
await ledger.friendbot(payer.publicKey());
const upstream = createServer((q, s) => {
  const size = Number(new URL(q.url, 'http://x').searchParams.get('size') ?? 1000);
  s.writeHead(200, { 'content-length': String(size) });
  s.end(Buffer.alloc(size, 1));
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const payments = new PaymentsService({
  config: {
    seed: new Secret(bridgeKp.secret()), network: 'local', horizonUrl: ledger.url, passphrase: undefined,
    freeBytes: FREE, graceSeconds: 0, throttleBytesPerSec: RATE, pricePerMibStroops: 10_000n, paymentMib: 10,
    requestTtlSeconds: 900, tabSettleSeconds: 60, tabMaxUnsettledStroops: 10_000_000n, adminToken: undefined,
  },
  dataDir: join(dir, 'data'),
  log,
  limits: { perVisitor: { capacity: 100, perMinute: 6000 }, global: { capacity: 1000, perMinute: 60000 } },
});
await payments.start();
const meter = new Meter({
  freeBytes: FREE, graceSeconds: 0, throttleBytesPerSec: RATE, service: 'tor',
  payments: {
    requestPayment: async (k, s) => payments.requestPayment(k, s),
    resolveSession: (t) => payments.resolveSession(t),
    consume: (id, n) => void payments.consume(id, n),
    sessionCredit: (id) => payments.sessionCredit(id),
  },
});
let liftedAt = new Map();
payments.on('complete', (e) => {
  meter.paymentComplete(e);
  liftedAt.set(e.request.id, performance.now());
});
const gw = new GatewayService({
  upstream: new URL(`http://127.0.0.1:${upstream.address().port}`), wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0,
  onionAddress: () => undefined, log, workers: 1,
  meter: { meter, paymentUrl: (_v, _h, id) => `/v1/payment-requests/${id}`, requestJson: (r) => payments.requestJson(r) },
});
await gw.start();
const api = new ApiService({ host: '127.0.0.1', port: 0, log, healthReport: () => ({}) });
api.mount('/v1', paymentsRouter(payments));
await api.start();
const onionPort = Number(gw.onionTarget().split(':')[1]);

/** A GET on the onion listener as circuit `id`; resolves with the bytes received. */
function circuitGet(id, size, stopAfterMs) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: onionPort });
    let bytes = 0;
    let firstAt = 0;
    s.on('data', (d) => {
      bytes += d.length;
      firstAt ||= performance.now();
    });
    const done = () => resolve({ bytes, seconds: (performance.now() - firstAt) / 1000 });
    s.on('close', done);
    s.write(`PROXY TCP6 fc00:dead:beef:4dad::${(id >>> 16).toString(16)}:${(id & 0xffff).toString(16)} ::1 1 80\r\nGET /?size=${size} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n`);
    if (stopAfterMs) setTimeout(() => s.destroy(), stopAfterMs);
  });
}

function post(path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const r = request({ host: '127.0.0.1', port: api.port(), path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve({ status: res.statusCode, body: t }));
    });
    r.on('error', reject);
    r.end(data);
  });
}

// --- 2. payment submitted → throttle lifted ------------------------------------------------------
console.log(`\n2. payment submitted → throttle lifted, local ledger, ${RUNS} payments`);
const account = await (await fetch(`${ledger.url}/accounts/${payer.publicKey()}`)).json();
let seq = BigInt(account.sequence);
const times = [];
for (let i = 1; i <= RUNS; i++) {
  await circuitGet(i, FREE + 1);
  let a;
  for (let t = 0; t < 100; t++) {
    a = meter.account(`session:${meter.account(`circuit:${i}`).sessionId ?? 'none'}`);
    if (meter.request(a) && a.throttled) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const req = meter.request(a);
  if (!req) throw new Error(`circuit ${i}: no payment request`);
  seq += 1n;
  const tx = new TransactionBuilder(
    { accountId: () => payer.publicKey(), sequenceNumber: () => (seq - 1n).toString(), incrementSequenceNumber() {} },
    { fee: '100', networkPassphrase: payments.networkPassphrase },
  )
    .addOperation(Operation.payment({ destination: req.destination, asset: Asset.native(), amount: (Number(req.amount) / 1e7).toFixed(7) }))
    .addMemo(Memo.hash(req.memoHash))
    .setTimeout(60)
    .build();
  tx.sign(payer);
  const t0 = performance.now();
  const r = await post(`/v1/payment-requests/${req.id}/payments`, { xdr: tx.toXDR() });
  if (r.status !== 201) throw new Error(`payment ${i}: HTTP ${r.status} ${r.body}`);
  const lifted = liftedAt.get(req.id);
  if (a.throttled || lifted === undefined) throw new Error(`payment ${i}: the throttle was not lifted`);
  times.push(lifted - t0);
}
times.sort((x, y) => x - y);
const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
console.log(`   p50 ${pct(50).toFixed(1)} ms   p99 ${pct(99).toFixed(1)} ms   min ${times[0].toFixed(1)} ms   max ${times.at(-1).toFixed(1)} ms   (goal: p50 ≤ 200 ms)`);

// --- 3. throttle accuracy ----------------------------------------------------------------------------
console.log(`\n3. throttle rate, configured ${RATE} B/s, one unpaid visitor, 2 parallel streams for 6 s`);
const id = 100_000;
await circuitGet(id, FREE); // uses up the allowance
const streams = await Promise.all([circuitGet(id, 10 * 1024 * 1024, 6000), circuitGet(id, 10 * 1024 * 1024, 6000)]);
const measured = streams.reduce((n, s) => n + s.bytes, 0) / Math.max(...streams.map((s) => s.seconds));
console.log(`   measured ${measured.toFixed(0)} B/s = ${(measured / RATE).toFixed(2)} × configured (goal 0.8–1.2)`);

await api.stop();
await gw.stop();
meter.close();
await payments.stop();
await ledger.close();
upstream.close();
rmSync(dir, { recursive: true, force: true });
