#!/usr/bin/env node
// Tab verification rate, on one core: `node bench/payments/tab-verify.js` (Node 22; no build needed;
// `taskset -c 0 node …` pins it to one CPU).
//
// Measures, in the same run and over the same pre-signed tab transactions (284-byte envelopes):
//   1. raw node:crypto Ed25519 verify of each transaction's signature (KeyObject cached): the floor;
//   2. verifyTabTransaction: the bridge's full offline check (decode, source, sequence, fee, payer,
//      destination, asset, memo, time bounds, increasing amount, limit, signature);
//   3. TabBook.submit: the same plus the credit, one SQLite transaction each (WAL, synchronous=FULL);
//   4. the SDK's pure-JS Keypair.verify, for comparison (a short run).
// The goal is ≥ 3,000 tab verifications per second on one core. Knobs: BENCH_TABS=N (default 5000).
//
// It runs the TypeScript sources directly (Node's type stripping) with the same './x.js' → './x.ts'
// resolve hook the tests use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { verify as edVerify } from 'node:crypto';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'bridge', 'src', 'payments');
await import(pathToFileURL(join(ROOT, 'bridge', 'test', 'support', 'ts-resolve.mjs')).href);

const { Keypair, TransactionBuilder } = await import('@stellar/stellar-sdk');
const { verifyTabTransaction, ed25519Key } = await import(pathToFileURL(join(SRC, 'verify.ts')).href);
const { PaymentStore } = await import(pathToFileURL(join(SRC, 'store.ts')).href);
const { TabBook, TAB_MAX_FEE_STROOPS, TAB_MIN_REMAINING_SECONDS } = await import(pathToFileURL(join(SRC, 'tabs.ts')).href);
const { tabXdr } = await import(pathToFileURL(join(SRC, 'test-support', 'fixtures.ts')).href);

const N = Number(process.env.BENCH_TABS ?? 5000);
const PASSPHRASE = 'TorPlus Local Ledger ; 2026';
const bridge = Keypair.random();
const payer = Keypair.random();
const memoHex = 'ab'.repeat(32);
const sequence = 4294967297n;
const now = Math.floor(Date.now() / 1000);

// --- the transactions: one tab's series, cumulative amounts 1000, 2000, … stroops ---------------------
let t0 = performance.now();
const xdrs = [];
for (let i = 1; i <= N; i++) {
  xdrs.push(tabXdr({ bridge: bridge.publicKey(), sequence, payer, amount: BigInt(i) * 1000n, memoHex, passphrase: PASSPHRASE, maxTime: now + 3600 }));
}
const buildMs = performance.now() - t0;
const parsed = xdrs.map((x) => {
  const tx = TransactionBuilder.fromXDR(x, PASSPHRASE);
  return { hash: Buffer.from(tx.hash()), sig: Buffer.from(tx.signatures[0].signature.value) };
});
const terms = (last) => ({
  bridge: bridge.publicKey(), sequence, payer: payer.publicKey(), memoHash: memoHex, lastAmount: last,
  limit: 10n ** 15n, maxFee: TAB_MAX_FEE_STROOPS, minRemainingSeconds: TAB_MIN_REMAINING_SECONDS,
});

/** Times `run(n)` after a warm-up on a tenth; `prepare(n)` (untimed) returns the function to run. */
function rate(name, n, prepare) {
  prepare(Math.ceil(n / 10))();
  const run = prepare(n);
  const t = performance.now();
  run();
  const ms = performance.now() - t;
  return { name, n, ms: Math.round(ms), perSecond: Math.round((n / ms) * 1000), microsEach: Math.round((ms / n) * 1000) };
}

const results = [];
results.push(rate('raw node:crypto Ed25519 verify (cached KeyObject)', N, (n) => () => {
  const key = ed25519Key(payer.publicKey());
  for (let i = 0; i < n; i++) if (!edVerify(null, parsed[i].hash, key, parsed[i].sig)) throw new Error('bad signature');
}));
results.push(rate('verifyTabTransaction (full offline check)', N, (n) => () => {
  let last = 0n;
  for (let i = 0; i < n; i++) last = verifyTabTransaction(xdrs[i], terms(last), PASSPHRASE, now).amount;
}));

// The credit path: TabBook.submit on a real store (WAL, synchronous=FULL), a fresh database per run.
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const dirs = [];
results.push(rate('TabBook.submit (verify + credit, SQLite FULL)', N, (n) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-tabs-'));
  dirs.push(dir);
  const store = PaymentStore.open(dir);
  store.insertSession({ id: 'ses_b', tokenHash: Buffer.alloc(32, 1), visitorKey: 'circuit:1', createdAt: 1 });
  store.insertRequest({ id: 'req_b', service: 'tor', sessionId: 'ses_b', amount: 1n, asset: 'native', destination: bridge.publicKey(),
    memoHash: 'cd'.repeat(32), creditBytes: 1, createdAt: 1, expiresAt: 2, status: 'open' }, 'circuit:1');
  const tab = store.insertTab({ id: 'tab_b', requestId: 'req_b', sessionId: 'ses_b', payer: payer.publicKey(), memoHash: memoHex,
    limitStroops: 10n ** 15n, openedAt: Date.now() }, sequence);
  const book = new TabBook({
    store, horizon: undefined, keypair: bridge, passphrase: PASSPHRASE, pricePerMibStroops: 10_000n, settleSeconds: 3600,
    maxUnsettledStroops: 10n ** 15n, now: () => Date.now(), log: silent, onCredit: () => {},
  });
  return () => {
    for (let i = 0; i < n; i++) book.submit(tab.id, xdrs[i]);
    store.close();
  };
}));
for (const d of dirs) rmSync(d, { recursive: true, force: true });

const SDK_N = Math.min(N, 500);
results.push(rate('SDK Keypair.verify (pure JS), for comparison', SDK_N, (n) => () => {
  for (let i = 0; i < n; i++) if (!payer.verify(parsed[i].hash, parsed[i].sig)) throw new Error('bad signature');
}));

console.log(`tab verification on one core: ${N} transactions of one tab (${Buffer.from(xdrs[0], 'base64').length}-byte envelopes), ` +
  `Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'}; building and signing them took ${Math.round(buildMs)} ms`);
for (const r of results) console.log(`  ${r.name.padEnd(56)} ${String(r.perSecond).padStart(7)} /s  (${r.microsEach} µs each, n=${r.n})`);
const full = results[1].perSecond;
const raw = results[0].perSecond;
console.log(`  => ${full} tab verifications/s = ${((full / raw) * 100).toFixed(0)}% of raw node:crypto verify; goal 3,000/s: ${full >= 3000 ? 'met' : 'NOT met'}`);
console.log(JSON.stringify({ goalPerSecond: 3000, results }));
