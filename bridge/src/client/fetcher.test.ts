// fetchWithPayment through a SOCKS5 stand-in against a mock bridge (test-support/mock-bridge.ts) that wraps
// the REAL payments service on the local ledger: free allowance, throttling, 402 + payment requests, tabs
// verified by the bridge's own code, on-chain payments, Range resumes, --max-spend, and the money rules.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair, Networks } from '@stellar/stellar-sdk';
import { SocksStandIn } from '../../test/support/socks-stand-in.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { HorizonClient } from '../payments/horizon.js';
import { PaymentsService } from '../payments/payments-service.js';
import { capturingLogger, testConfig } from '../payments/test-support/fixtures.js';
import { BudgetExhaustedError, PaymentFailedError } from './errors.js';
import { fetchWithPayment, parseContentRange, validatorOf, type FetchOptions, type FetchResult } from './fetcher.js';
import type { LedgerApi } from './payer.js';
import { MockBridge, type MockBridgeOptions } from './test-support/mock-bridge.js';

const ONION = `${'b'.repeat(56)}.onion`;
const KIB = 1024;
const MIB = 1024 * 1024;
const PRICE = 10_000n; // stroops per MiB: 0.001 XLM, and a payment request buys 1 MiB

let ledger: LedgerHandle;
let horizon: HorizonClient;
const logs = capturingLogger();
const cleanups: Array<() => Promise<void> | void> = [];
let secrets: string[] = [];

beforeAll(async () => {
  ledger = await startLedger();
  horizon = new HorizonClient(ledger.url);
});
afterAll(async () => {
  await ledger.close();
  for (const s of secrets) expect(logs.text()).not.toContain(s);
});
let lastEvents: string[] = [];
afterEach(async () => {
  if (process.env.CLIENT_TEST_EVENTS === '1') process.stdout.write(`${expect.getState().currentTestName}\n  ${lastEvents.join('\n  ')}\n`);
  lastEvents = [];
  while (cleanups.length) await cleanups.pop()!();
});

interface Setup {
  payments: PaymentsService;
  mock: MockBridge;
  socks: SocksStandIn;
  payer: Keypair;
  bridge: Keypair;
  dir: string;
  content: Buffer;
  opts: (over?: Partial<FetchOptions>) => FetchOptions;
  events: string[];
}

async function setup(
  mockOver: Partial<MockBridgeOptions> & { contentBytes?: number } = {},
  svc: { settleSeconds?: number; tickMs?: number } = {},
): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'torplus-client-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const bridge = Keypair.random();
  const payer = Keypair.random();
  secrets.push(payer.secret(), bridge.secret());
  await ledger.friendbot(bridge.publicKey());
  await ledger.friendbot(payer.publicKey());
  const payments = new PaymentsService({
    config: testConfig(bridge.secret(), {
      horizonUrl: ledger.url, pricePerMibStroops: PRICE, paymentMib: 1, tabSettleSeconds: svc.settleSeconds ?? 3600,
    }),
    dataDir: dir,
    log: logs.log,
    limits: { perVisitor: { capacity: 100, perMinute: 100 }, tabsPerSession: { capacity: 20, perMinute: 20 } },
    tabs: { tickMs: svc.tickMs ?? 3_600_000, abandonAfterMs: 3_600_000 },
  });
  await payments.start();
  cleanups.push(() => payments.stop());
  const content = randomBytes(mockOver.contentBytes ?? 3 * MIB);
  const mock = new MockBridge({
    payments, content, apiOrigin: `http://${ONION}:8000`, freeBytes: 512 * KIB, throttleBytesPerSec: 64 * KIB, ...mockOver,
  });
  const port = await mock.listen();
  cleanups.push(() => mock.close());
  const socks = new SocksStandIn(() => port);
  const socksPort = await socks.listen();
  cleanups.push(() => socks.close());
  const events: string[] = [];
  lastEvents = events;
  const opts = (over: Partial<FetchOptions> = {}): FetchOptions => ({
    url: `http://${ONION}/file`,
    output: join(dir, 'out.bin'),
    socks: { host: '127.0.0.1', port: socksPort },
    seed: payer.secret(),
    horizonUrl: ledger.url,
    maxSpendStroops: 100_000n, // 0.01 XLM
    crawl: { bytesPerSec: 256 * KIB, windowMs: 500, recoverMs: 400, probeBackoffMs: 300 },
    retryBaseMs: 20,
    onEvent: (m) => events.push(m),
    ...over,
  });
  return { payments, mock, socks, payer, bridge, dir, content, opts, events };
}

function expectFile(s: Setup, r: FetchResult): void {
  expect(r.bytes).toBe(s.content.length);
  expect(readFileSync(r.output).equals(s.content)).toBe(true);
  expect(existsSync(`${r.output}.part`)).toBe(false);
}

function noSecretsIn(s: Setup): void {
  const text = s.events.join('\n');
  expect(text).not.toContain(s.payer.secret());
  expect(text).not.toMatch(/S[A-Z2-7]{55}/);
}

describe('fetchWithPayment (tab mode)', () => {
  it('pays by tab when a running response is throttled; the throttle lifts and the download completes', async () => {
    const s = await setup();
    const progress: number[] = [];
    const r = await fetchWithPayment(s.opts({ onProgress: (p) => progress.push(p.bytes) }));
    expectFile(s, r);
    // 3 MiB − 512 KiB free = 2.5 MiB: three requests of 1 MiB each, on one tab, cumulative.
    expect(r.payments.map((p) => [p.mode, p.amountStroops, p.cumulativeStroops])).toEqual([
      ['tab', 10_000n, 10_000n],
      ['tab', 10_000n, 20_000n],
      ['tab', 10_000n, 30_000n],
    ]);
    expect(new Set(r.payments.map((p) => p.tabId)).size).toBe(1);
    expect(r.paidStroops).toBe(30_000n);
    expect(r.spentStroops).toBe(30_000n);
    expect(r.throttled).toBe(false);
    expect(r.sessionToken).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(r.sessionId).toMatch(/^ses_/);
    // The bridge's own books agree.
    expect((await s.payments.earnings()).creditedStroops).toBe(30_000n);
    expect((await s.payments.sessionState(r.sessionToken!))?.receipts).toHaveLength(3);
    // Every stream went through the proxy with the onion name unresolved, on one isolation identity.
    expect(s.socks.connects.length).toBeGreaterThan(3);
    expect(new Set(s.socks.connects.map((c) => `${c.atyp} ${c.host}`))).toEqual(new Set([`3 ${ONION}`]));
    expect(new Set(s.socks.connects.map((c) => c.port))).toEqual(new Set([80, 8000]));
    const users = new Set(s.socks.connects.map((c) => c.username));
    expect(users.size).toBe(1);
    expect([...users][0]).toMatch(/^torplus-/);
    // Probes asked with Accept-Payment and, once known, the session token.
    const probes = s.mock.contentRequests.filter((q) => q.headers.range === 'bytes=0-0');
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes.every((q) => q.headers['accept-payment'] === 'stellar')).toBe(true);
    expect(probes.slice(1).every((q) => q.headers['torplus-session'] === r.sessionToken)).toBe(true);
    expect(progress.length).toBeGreaterThan(0);
    noSecretsIn(s);
  });

  it('pays on a 402 before any content, then goes on with the session token', async () => {
    const s = await setup({ freeBytes: 0, contentBytes: 2 * MIB });
    const r = await fetchWithPayment(s.opts());
    expectFile(s, r);
    expect(r.payments).toHaveLength(2);
    const first = s.mock.contentRequests[0]!;
    expect(first.status).toBe(402);
    expect(first.headers['accept-payment']).toBe('stellar');
    expect(first.headers['torplus-session']).toBeUndefined();
    const second = s.mock.contentRequests[1]!;
    expect(second.headers['torplus-session']).toBe(r.sessionToken);
    expect(second.status).toBe(200);
  });

  it('resumes with Range and If-Range when the bridge does not speed a running response up', async () => {
    const s = await setup({ liftRunning: false });
    const r = await fetchWithPayment(s.opts());
    expectFile(s, r);
    const ranged = s.mock.contentRequests.filter((q) => typeof q.headers.range === 'string' && q.headers.range !== 'bytes=0-0');
    expect(ranged.length).toBeGreaterThanOrEqual(1);
    expect(ranged.every((q) => q.headers['if-range'] === s.mock.etag && q.status === 206)).toBe(true);
    expect(s.events.some((e) => /still slow after the payment/.test(e))).toBe(true);
    expect(r.paidStroops).toBeLessThanOrEqual(40_000n);
  });

  it('resumes a response cut when the allowance runs out: 402, pay, 206', async () => {
    const s = await setup({ cutWhenUnpaid: true });
    const r = await fetchWithPayment(s.opts());
    expectFile(s, r);
    expect(r.payments).toHaveLength(3);
    const statuses = s.mock.contentRequests.map((q) => q.status);
    expect(statuses).toContain(402);
    expect(statuses.filter((x) => x === 206).length).toBeGreaterThanOrEqual(3);
  });

  it('starts over when the server ignores Range (no payment involved)', async () => {
    const s = await setup({ ranges: false, cutOnceAt: MIB, freeBytes: 100 * MIB });
    const r = await fetchWithPayment(s.opts({ maxSpendStroops: 0n, seed: undefined, horizonUrl: undefined }));
    expectFile(s, r);
    expect(r.payments).toEqual([]);
    const q = s.mock.contentRequests;
    expect(q).toHaveLength(2);
    expect(q[1]!.headers.range).toMatch(/^bytes=\d+-$/);
    expect(q[1]!.status).toBe(200);
    expect(s.events.some((e) => /starting over/.test(e))).toBe(true);
  });

  it('stops at --max-spend, keeps the partial file, and never signs for more', async () => {
    const s = await setup();
    // 0.0015 XLM: one full payment (1 MiB) and a partial one of 0.0005 XLM (512 KiB), then no more.
    const err = await fetchWithPayment(s.opts({ maxSpendStroops: 15_000n })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BudgetExhaustedError);
    const b = err as BudgetExhaustedError;
    expect(b.exitCode).toBe(3);
    expect(b.message).toMatch(/asks 0.0010000 XLM, but only 0.0000000 XLM of --max-spend 0.0015000 XLM is left/);
    expect(b.partialPath).toBe(join(s.dir, 'out.bin.part'));
    expect(statSync(b.partialPath!).size).toBe(b.partialBytes);
    expect(b.partialBytes).toBeGreaterThanOrEqual(2 * MIB);
    expect(readFileSync(b.partialPath!).equals(s.content.subarray(0, b.partialBytes))).toBe(true);
    expect(existsSync(join(s.dir, 'out.bin'))).toBe(false);
    expect((await s.payments.earnings()).creditedStroops).toBe(15_000n);
  });

  it('with allowThrottled, finishes unpaid (throttled) after --max-spend', async () => {
    const s = await setup({ contentBytes: 1.5 * MIB, freeBytes: 256 * KIB, throttleBytesPerSec: 128 * KIB });
    const r = await fetchWithPayment(s.opts({ maxSpendStroops: 10_000n, allowThrottled: true }));
    expectFile(s, r);
    expect(r.payments).toHaveLength(1);
    expect(r.throttled).toBe(true);
    expect(s.events.some((e) => /going on unpaid/.test(e))).toBe(true);
  });

  it('opens a new tab when the bridge has settled the last one', async () => {
    const s = await setup({ contentBytes: 4.5 * MIB }, { settleSeconds: 1, tickMs: 100 });
    const r = await fetchWithPayment(s.opts());
    expectFile(s, r);
    expect(r.paidStroops).toBe(40_000n);
    expect(new Set(r.payments.map((p) => p.tabId)).size).toBeGreaterThanOrEqual(2);
    expect(r.spentStroops).toBeLessThanOrEqual(50_000n);
    // Settled on the ledger: the payer's balance went down by what the settled tabs held (the bridge paid the fees).
    await s.payments.settleTabs();
    await new Promise((res) => setTimeout(res, 1500));
    await s.payments.settleTabs();
    const balance = (await horizon.account(s.payer.publicKey()))!.balance;
    expect(balance).toBe(10_000n * 10_000_000n - 40_000n);
  });
});

describe('fetchWithPayment (chain mode)', () => {
  it('pays each request on the ledger through the bridge', async () => {
    const s = await setup({ contentBytes: 2 * MIB });
    const r = await fetchWithPayment(s.opts({ mode: 'chain' }));
    expectFile(s, r);
    expect(r.payments).toHaveLength(2);
    expect(r.payments.every((p) => p.mode === 'chain' && /^[0-9a-f]{64}$/.test(p.transactionHash ?? ''))).toBe(true);
    expect(r.paidStroops).toBe(20_000n);
    const balance = (await horizon.account(s.payer.publicKey()))!.balance;
    expect(balance).toBe(10_000n * 10_000_000n - 20_000n - 2n * 100n); // two payments and two fees
    for (const p of r.payments) expect((await horizon.transaction(p.transactionHash!))?.successful).toBe(true);
  });
});

describe('money rules', () => {
  it('refuses to sign when the bridge names another network than --horizon serves', async () => {
    const s = await setup({ freeBytes: 0 });
    const lying: LedgerApi = {
      url: 'http://horizon.test',
      networkPassphrase: async () => Networks.PUBLIC,
      account: (id) => horizon.account(id),
      submit: (tx) => horizon.submit(tx),
      transaction: (hash) => horizon.transaction(hash),
    };
    await expect(fetchWithPayment(s.opts({ ledger: lying }))).rejects.toThrow(/network .*Public Global Stellar Network.*refusing to sign/);
    expect(s.mock.seen.filter((q) => q.url.startsWith('/v1/tabs'))).toEqual([]);
    expect(existsSync(join(s.dir, 'out.bin.part'))).toBe(false);
  });

  it('pays only on the host being downloaded from', async () => {
    const s = await setup({ freeBytes: 0, apiOrigin: `http://${'e'.repeat(56)}.onion:8000` });
    await expect(fetchWithPayment(s.opts())).rejects.toThrow(/payment request is on another host \(e+\.onion\) than the download; not paying there/);
    expect(s.mock.seen.filter((q) => q.url.startsWith('/v1/'))).toEqual([]);
  });

  it('does not pay again when the bridge keeps asking right after a payment', async () => {
    const s = await setup({ freeBytes: 0, ignorePayments: true, contentBytes: MIB });
    const err = await fetchWithPayment(s.opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentFailedError);
    expect((err as Error).message).toMatch(/keeps asking for payment/);
    expect((await s.payments.earnings()).creditedStroops).toBe(10_000n);
    expect(s.mock.seen.filter((q) => /^\/v1\/tabs\/[^/]+$/.test(q.url) && q.method === 'POST')).toHaveLength(1);
  });

  it('without a budget: stops at the first 402 (exit 3) and never contacts the payment API', async () => {
    const s = await setup({ freeBytes: 256 * KIB, contentBytes: MIB });
    const err = await fetchWithPayment(s.opts({ maxSpendStroops: 0n, seed: undefined })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExhaustedError);
    expect((err as BudgetExhaustedError).partialBytes).toBeGreaterThanOrEqual(256 * KIB);
    expect(s.mock.seen.filter((q) => q.url.startsWith('/v1/tabs'))).toEqual([]);
  });
});

describe('range helpers', () => {
  it('parses Content-Range and picks If-Range validators', () => {
    expect(parseContentRange('bytes 100-199/1000')).toEqual({ start: 100, end: 199, total: 1000 });
    expect(parseContentRange('bytes 0-0/*')).toEqual({ start: 0, end: 0, total: undefined });
    expect(parseContentRange('bytes 5-4/10')).toBeUndefined();
    expect(parseContentRange('bytes 0-10/10')).toBeUndefined();
    expect(parseContentRange(undefined)).toBeUndefined();
    expect(validatorOf({ etag: '"abc"', 'last-modified': 'x' })).toBe('"abc"');
    expect(validatorOf({ etag: 'W/"abc"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT' })).toBe('Tue, 01 Jan 2030 00:00:00 GMT');
    expect(validatorOf({})).toBeUndefined();
  });
});
