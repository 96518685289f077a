#!/usr/bin/env node
// bench/paywall: `npm run bench:paywall`. Prints two figures, each beside a reference measured in the
// same run (nothing is asserted: these machines are noisy):
//   1. pay pages rendered per second (a worker's answer to a throttled visitor's navigation: QR code,
//      strings, CSP nonce), against the JSON 402 a client gets for the same request (the request's JSON
//      built and serialized, as the single-process gateway does per answer);
//   2. a wallet's payment noticed: from the ledger accepting a payment of the SEP-7 URI to the bridge
//      crediting it (its account's payment stream), median and p99 (the goal: within 2 s),
//      against a signed transaction handed to the bridge, which submits and credits it itself.
import { Keypair } from '@stellar/stellar-sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'bridge', 'dist', p));
const { startLedger } = await dist('devnet/ledger/ledger.js');
const { payUri } = await dist('devnet/ledger/testing.js');
const { PaymentsService } = await dist('payments/payments-service.js');
const { Paywall } = await dist('gateway/paywall/paywall.js');
const { paymentRequiredAnswer } = await dist('gateway/meter/visitor-meter.js');
const { createLogger } = await dist('log/logger.js');
const { Secret } = await dist('config/secret.js');

const RUNS = Number(process.env.BENCH_PAYWALL ?? 30);
const dir = mkdtempSync(join(tmpdir(), 'bench-paywall-'));
const ledger = await startLedger({ port: 0 });
const bridge = Keypair.random();
const wallet = Keypair.random();
await ledger.friendbot(bridge.publicKey());
await ledger.friendbot(wallet.publicKey());
const payments = new PaymentsService({
  config: {
    seed: new Secret(bridge.secret()), network: 'local', horizonUrl: ledger.url, passphrase: undefined, freeBytes: 1, graceSeconds: 0,
    throttleBytesPerSec: 32768, pricePerMibStroops: 10_000n, paymentMib: 10, requestTtlSeconds: 900, tabSettleSeconds: 60,
    tabMaxUnsettledStroops: 10_000_000n, adminToken: undefined, paywall: 'page', paywallTemplate: undefined,
  },
  dataDir: join(dir, 'data'), log: createLogger({ level: 'error' }), siteName: () => 'bench.onion',
  limits: { perVisitor: { capacity: 1e6, perMinute: 1e6 }, global: { capacity: 1e6, perMinute: 1e6 } },
});
await payments.start();

// --- 1. rendering ---------------------------------------------------------------------------------
const { request } = await payments.requestPayment('circuit:1', 'tor');
const body = JSON.stringify(payments.requestJson(request));
const paywall = new Paywall({ mode: 'page', throttleBytesPerSec: 32768 });
const req = { method: 'GET', url: '/article.html', headers: { host: 'bench.onion', 'accept-language': 'de-DE,de;q=0.9,en;q=0.5', 'sec-fetch-mode': 'navigate' } };
const headers = ['TorPlus-Payment-Request', 'http://x/v1/payment-requests/1', 'Set-Cookie', 'torplus_session=x; Path=/'];
function rate(fn, ms = 1500) {
  for (let i = 0; i < 200; i++) fn(); // warm up (and fill the QR cache, as a worker's first page does)
  let n = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) for (let i = 0; i < 50; i++, n++) fn();
  return n / (ms / 1000);
}
const pages = rate(() => paywall.page(req, body, headers));
const jsons = rate(() => paymentRequiredAnswer(headers, JSON.stringify(payments.requestJson(request))));
const size = Buffer.byteLength(paywall.page(req, body, headers).body);
console.log('1. pay pages rendered per second (one core)');
console.log(`   pay page: ${Math.round(pages).toLocaleString('en-US')}/s (${(size / 1024).toFixed(1)} KiB each; goal < 30 KB)`);
console.log(`   JSON 402: ${Math.round(jsons).toLocaleString('en-US')}/s   ratio ${(pages / jsons).toFixed(3)}`);

// --- 2. a wallet's payment noticed ----------------------------------------------------------------
const credited = new Map();
payments.on('complete', (e) => credited.get(e.request.id)?.(performance.now()));
const waitCredit = (id) => new Promise((resolve) => credited.set(id, resolve));
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const stream = [];
const direct = [];
for (let i = 0; i < RUNS; i++) {
  const r = (await payments.requestPayment(`circuit:${100 + i}`, 'tor')).request;
  const done = waitCredit(r.id);
  const uri = payments.paymentUri(r);
  await payUri(ledger, wallet, uri); // resolves once the ledger accepted it
  const accepted = performance.now();
  stream.push((await done) - accepted);
}
const { Horizon, TransactionBuilder, Operation, Asset, Memo } = await import('@stellar/stellar-sdk');
const server = new Horizon.Server(ledger.url, { allowHttp: true });
for (let i = 0; i < RUNS; i++) {
  const r = (await payments.requestPayment(`circuit:${1000 + i}`, 'tor')).request;
  const account = await server.loadAccount(wallet.publicKey());
  const tx = new TransactionBuilder(account, { fee: '100', networkPassphrase: ledger.networkPassphrase })
    .addOperation(Operation.payment({ destination: bridge.publicKey(), asset: Asset.native(), amount: '0.1' }))
    .addMemo(Memo.hash(r.memoHash)).setTimeout(60).build();
  tx.sign(wallet);
  const t0 = performance.now();
  await payments.submitXdr(r.id, tx.toXDR());
  direct.push(performance.now() - t0);
}
console.log(`2. payment → credited, ${RUNS} runs each (local ledger)`);
console.log(`   wallet payment seen on the stream: p50 ${pct(stream, 50).toFixed(0)} ms, p99 ${pct(stream, 99).toFixed(0)} ms (goal ≤ 2000 ms)`);
console.log(`   XDR submitted by the bridge:       p50 ${pct(direct, 50).toFixed(0)} ms, p99 ${pct(direct, 99).toFixed(0)} ms   ratio of medians ${(pct(stream, 50) / pct(direct, 50)).toFixed(2)}`);

await payments.stop();
await ledger.close();
rmSync(dir, { recursive: true, force: true });
