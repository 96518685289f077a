// Tab mode against the local ledger: opening checks, offline verification and crediting, and settlement
// in sequence order: fillers for abandoned tabs, forced settlement of lower tabs, failures, a sequence used
// elsewhere, a lost answer, a restart mid-settlement, and an expired time bound.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair, Operation, TransactionBuilder, Account } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { HorizonClient, HorizonUnavailable, SubmitRejected } from './horizon.js';
import { MIB } from './payment-requests.js';
import { PaymentsService, type PaymentsServiceOptions } from './payments-service.js';
import { PaymentStore } from './store.js';
import type { TabInfo } from './tabs.js';
import { FlakyHorizon, capturingLogger, paymentErrorOf, paymentTransaction, tabXdr, testConfig } from './test-support/fixtures.js';

let ledger: LedgerHandle;
let horizon: HorizonClient;
let bridge: Keypair;
let dir: string;
const services: PaymentsService[] = [];
const logs = capturingLogger();
const PRICE = 10_000n; // stroops per MiB

beforeAll(async () => {
  ledger = await startLedger();
  horizon = new HorizonClient(ledger.url);
});
afterAll(async () => {
  await ledger.close();
  if (process.env.PAYMENTS_TEST_LOGS === '1') process.stdout.write(logs.text());
  expect(logs.text()).not.toContain(bridge.secret());
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'payments-tabs-'));
  bridge = Keypair.random(); // a fresh account per test: its sequence numbers are the subject here
  await ledger.friendbot(bridge.publicKey());
});
afterEach(async () => {
  while (services.length) await services.pop()!.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Opts = Partial<PaymentsServiceOptions> & { settleSeconds?: number; maxUnsettled?: bigint };
function service(o: Opts = {}): PaymentsService {
  const s = new PaymentsService({
    config: testConfig(bridge.secret(), {
      horizonUrl: ledger.url, pricePerMibStroops: PRICE, tabSettleSeconds: o.settleSeconds ?? 3600,
      tabMaxUnsettledStroops: o.maxUnsettled ?? 10_000_000n,
    }),
    dataDir: dir,
    log: logs.log,
    tabs: { tickMs: 3_600_000, abandonAfterMs: 3_600_000 }, // settlement passes only when the test asks
    limits: { tabsPerSession: { capacity: 20, perMinute: 20 } },
    ...o,
  });
  services.push(s);
  return s;
}

async function payer(): Promise<Keypair> {
  const k = Keypair.random();
  await ledger.friendbot(k.publicKey());
  return k;
}

const nowSec = () => Math.floor(Date.now() / 1000);
const tx = (tab: TabInfo, who: Keypair, amount: bigint, over: Partial<Parameters<typeof tabXdr>[0]> = {}) =>
  tabXdr({ bridge: tab.account, sequence: tab.sequence, payer: who, amount, memoHex: tab.memoHex, passphrase: tab.networkPassphrase, maxTime: nowSec() + 600, ...over });

const seqOf = async (k: Keypair | string) => (await horizon.account(typeof k === 'string' ? k : k.publicKey()))!.sequence;
const balanceOf = async (k: Keypair) => (await horizon.account(k.publicKey()))!.balance;
function tabRows() {
  const store = PaymentStore.open(dir);
  try {
    return store.pendingTabs();
  } finally {
    store.close();
  }
}

describe('opening a tab', () => {
  it('reserves the next sequence numbers in order and checks the payer', async () => {
    const s = service();
    await s.start();
    const { request, sessionToken } = (await s.requestPayment('circuit:1', 'tor'));
    const base = await seqOf(bridge);
    const p1 = await payer();
    const p2 = await payer();
    const t1 = await s.openTab(sessionToken!, p1.publicKey());
    const t2 = await s.openTab(request.id, p2.publicKey());
    expect([t1.sequence, t2.sequence]).toEqual([String(base + 1n), String(base + 2n)]);
    expect(t1).toMatchObject({ account: bridge.publicKey(), payer: p1.publicKey(), memoType: 'MEMO_HASH', status: 'open', amount: '0' });
    expect(BigInt(t1.limit)).toBe(10_000n * 10_000_000n - 2n * 5_000_000n); // balance minus the reserve
    expect(t2.requestId).toBe(request.id);
    // The same payer again: its open tab, from the same session; refused from another.
    expect((await s.openTab(sessionToken!, p1.publicKey())).id).toBe(t1.id);
    const other = (await s.requestPayment('circuit:2', 'tor')).sessionToken!;
    expect((await paymentErrorOf(s.openTab(other, p1.publicKey()))).code).toBe('tab_exists');

    expect((await paymentErrorOf(s.openTab(sessionToken!, Keypair.random().publicKey()))).code).toBe('unfunded_payer');
    expect((await paymentErrorOf(s.openTab(sessionToken!, 'GNOTANACCOUNT'))).code).toBe('wrong_source');
    expect((await paymentErrorOf(s.openTab(sessionToken!, bridge.publicKey()))).code).toBe('wrong_source');
    expect((await paymentErrorOf(s.openTab('no-such-token-or-request', p1.publicKey()))).code).toBe('unknown_session');
    // An account that can spend nothing above its reserve.
    const poor = Keypair.random();
    const create = new TransactionBuilder(new Account(p2.publicKey(), (await seqOf(p2)).toString()), { fee: '100', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.createAccount({ destination: poor.publicKey(), startingBalance: '1' }))
      .setTimeout(60)
      .build();
    create.sign(p2);
    await horizon.submit(create);
    expect((await paymentErrorOf(s.openTab(sessionToken!, poor.publicKey()))).code).toBe('insufficient_balance');
  });

  it('refuses a payer whose key cannot sign payments alone (weight vs medium threshold)', async () => {
    const flaky = new FlakyHorizon(new HorizonClient(ledger.url));
    flaky.mapAccount = (a) => (a.id === bridge.publicKey() ? a : { ...a, thresholds: { low: 1, med: 2, high: 3 } });
    const s = service({ horizon: flaky });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const err = await paymentErrorOf(s.openTab(token, (await payer()).publicKey()));
    expect(err.code).toBe('weak_signer');
    expect(err.message).toMatch(/weight 1.*need 2/);
  });

  it('rate-limits tab openings per session', async () => {
    const s = service({ limits: { tabsPerSession: { capacity: 1, perMinute: 1 } } });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    await s.openTab(token, (await payer()).publicKey());
    expect((await paymentErrorOf(s.openTab(token, (await payer()).publicKey()))).code).toBe('rate_limited');
  });
});

describe('tab transactions', () => {
  it('credits each larger cumulative amount at once, offline, and refuses the rest', async () => {
    const s = service();
    const seen: bigint[] = [];
    s.on('complete', (c) => seen.push(c.receipt.amount));
    await s.start();
    const { sessionToken } = (await s.requestPayment('circuit:1', 'tor'));
    const p = await payer();
    const tab = await s.openTab(sessionToken!, p.publicKey());
    const r1 = (await s.submitTab(tab.id, tx(tab, p, 15_000n)));
    expect(r1.receipt).toMatchObject({ via: 'tab', tabId: tab.id, amount: 15_000n, creditBytes: Math.floor(1.5 * MIB) });
    const r2 = (await s.submitTab(tab.id, tx(tab, p, 40_000n)));
    expect(r2.receipt).toMatchObject({ amount: 25_000n, creditBytes: 4 * MIB - Math.floor(1.5 * MIB) });
    expect(r2.tab.amount).toBe('40000');
    expect(seen).toEqual([15_000n, 25_000n]);
    expect((await s.sessionState(sessionToken!))!.creditBytes).toBe(4 * MIB);

    const refusals: Array<[string, string]> = [
      ['replay', tx(tab, p, 40_000n)],
      ['not_increasing', tx(tab, p, 30_000n)],
      ['wrong_sequence', tx(tab, p, 50_000n, { sequence: BigInt(tab.sequence) + 1n })],
      ['wrong_memo', tx(tab, p, 50_000n, { memoHex: '00'.repeat(32) })],
      ['bad_signature', tx(tab, p, 50_000n, { signers: [Keypair.random()] })],
      ['bad_time_bounds', tx(tab, p, 50_000n, { maxTime: nowSec() + 20 })],
      ['over_limit', tx(tab, p, BigInt(tab.limit) + 1n)],
      ['malformed_xdr', '%%%'],
    ];
    for (const [code, xdr] of refusals) expect([code, (await paymentErrorOf(() => s.submitTab(tab.id, xdr))).code]).toEqual([code, code]);
    expect((await paymentErrorOf(() => s.submitTab('tab_nope', tx(tab, p, 1n)))).code).toBe('unknown_tab');
    expect((await s.getTab(tab.id))!.amount).toBe('40000');
  });
});

describe('settlement', () => {
  it('settles in sequence order: fills an abandoned tab, settles lower tabs first, closes them', async () => {
    const s = service({ maxUnsettled: 100_000n });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const base = await seqOf(bridge);
    const [pa, pb, pc] = [await payer(), await payer(), await payer()];
    const ta = await s.openTab(token, pa.publicKey()); // abandoned: no transaction ever
    const tb = await s.openTab(token, pb.publicKey()); // active, not due yet
    const tc = await s.openTab(token, pc.publicKey()); // reaches TAB_MAX_UNSETTLED
    const before = { b: await balanceOf(pb), c: await balanceOf(pc), bridge: await balanceOf(bridge) };
    (await s.submitTab(tb.id, tx(tb, pb, 20_000n)));
    (await s.submitTab(tb.id, tx(tb, pb, 30_000n)));
    await s.settleTabs();
    expect(await seqOf(bridge)).toBe(base); // nothing due yet
    (await s.submitTab(tc.id, tx(tc, pc, 100_000n))); // due now, and so is everything below it
    await s.settleTabs();

    expect(await seqOf(bridge)).toBe(base + 3n);
    expect(before.b - (await balanceOf(pb))).toBe(30_000n); // only the latest of the series executed
    expect(before.c - (await balanceOf(pc))).toBe(100_000n);
    const gained = (await balanceOf(bridge)) - before.bridge;
    expect(gained).toBeGreaterThan(130_000n - 3n * 10_000n); // minus at most three fees
    expect(gained).toBeLessThanOrEqual(130_000n);
    expect([(await s.getTab(ta.id))!.status, (await s.getTab(tb.id))!.status, (await s.getTab(tc.id))!.status]).toEqual(['filled', 'settled', 'settled']);
    expect((await paymentErrorOf(() => s.submitTab(tb.id, tx(tb, pb, 40_000n)))).code).toBe('tab_closed');
    expect((await s.earnings())).toMatchObject({ onChainStroops: 130_000n, unsettledTabStroops: 0n });
    // The payer opens a new tab, at the next number.
    expect((await s.openTab(token, pb.publicKey())).sequence).toBe(String(base + 4n));
  });

  it('settles after TAB_SETTLE_SECONDS, and fills a run of abandoned tabs with one transaction', async () => {
    const s = service({ settleSeconds: 1, tabs: { tickMs: 3_600_000, abandonAfterMs: 0 } });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const base = await seqOf(bridge);
    const empties = [await s.openTab(token, (await payer()).publicKey()), await s.openTab(token, (await payer()).publicKey())];
    await s.settleTabs();
    expect(await seqOf(bridge)).toBe(base + 2n);
    expect((await Promise.all(empties.map((t) => s.getTab(t.id)))).map((t) => t!.status)).toEqual(['filled', 'filled']);
    // One filler transaction: the bridge account's sequence jumped by two in one ledger.
    const p = await payer();
    const t = await s.openTab(token, p.publicKey());
    (await s.submitTab(t.id, tx(t, p, 10_000n)));
    await s.settleTabs();
    expect((await s.getTab(t.id))!.status).toBe('open');
    await new Promise((r) => setTimeout(r, 1100));
    await s.settleTabs();
    expect((await s.getTab(t.id))!.status).toBe('settled');
    expect(await seqOf(bridge)).toBe(base + 3n);
  });

  it('settles before the time bound runs out', async () => {
    const s = service();
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const p = await payer();
    const t = await s.openTab(token, p.publicKey());
    (await s.submitTab(t.id, tx(t, p, 10_000n, { maxTime: nowSec() + 95 }))); // within SETTLE_MARGIN + 35 s
    await s.settleTabs();
    expect((await s.getTab(t.id))!.status).toBe('open');
    (await s.submitTab(t.id, tx(t, p, 20_000n, { maxTime: nowSec() + 91 })));
    // Due once now ≥ maxTime − 60 s: simulate the clock moving on.
    const later = service({ now: () => Date.now() + 40_000 });
    await s.stop();
    await later.start();
    await later.settleTabs();
    expect((await later.getTab(t.id))!.status).toBe('settled');
  });

  it('revokes the credit of a tab whose payment fails on the ledger (payer drained its account)', async () => {
    const s = service({ settleSeconds: 1, maxUnsettled: 10n ** 15n });
    await s.start();
    const { sessionToken } = (await s.requestPayment('circuit:1', 'tor'));
    const p = await payer();
    const t = await s.openTab(sessionToken!, p.publicKey());
    (await s.submitTab(t.id, tx(t, p, 5_000_000_000n))); // 500 XLM
    expect((await s.sessionState(sessionToken!))!.creditBytes).toBe(500 * 1000 * MIB);
    // The payer empties its account (down to 200 XLM) before the bridge settles.
    await horizon.submit(paymentTransaction({
      source: p, sequence: await seqOf(p), destination: bridge.publicKey(), amount: (await balanceOf(p)) - 2_000_000_000n,
      passphrase: ledger.networkPassphrase, memoText: 'bye',
    }));
    const base = await seqOf(bridge);
    await new Promise((r) => setTimeout(r, 1100));
    await s.settleTabs();
    expect((await s.getTab(t.id))!.status).toBe('failed');
    expect(await seqOf(bridge)).toBe(base + 1n); // a failed transaction still consumes its number
    expect((await s.sessionState(sessionToken!))!.creditBytes).toBe(0);
    expect((await s.earnings()).failedTabStroops).toBe(5_000_000_000n);
    expect(logs.text()).toMatch(/credit was revoked/);
  });

  it('loses a tab whose sequence number the account used elsewhere, and says why', async () => {
    const s = service({ maxUnsettled: 1n });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const p = await payer();
    const t = await s.openTab(token, p.publicKey());
    // The publisher pays someone from the bridge's account (with the seed): that consumes the tab's number.
    await horizon.submit(paymentTransaction({
      source: bridge, sequence: await seqOf(bridge), destination: p.publicKey(), amount: 1n, passphrase: ledger.networkPassphrase, memoText: 'x',
    }));
    (await s.submitTab(t.id, tx(t, p, 10_000n))); // due at once (TAB_MAX_UNSETTLED = 1 stroop)
    await s.settleTabs();
    await s.settleTabs();
    expect((await s.getTab(t.id))!.status).toBe('lost');
    expect(logs.text()).toMatch(/Use an account dedicated to the bridge/);
  });

  it('resubmits the very same envelope when an answer is lost, and after a restart mid-settlement', async () => {
    const flaky = new FlakyHorizon(new HorizonClient(ledger.url));
    const s = service({ horizon: flaky, maxUnsettled: 1n });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const p = await payer();
    const t = await s.openTab(token, p.publicKey());
    const before = await balanceOf(p);
    flaky.loseSubmitAnswers = 1; // the settlement reaches the ledger, but we never hear back
    (await s.submitTab(t.id, tx(t, p, 10_000n))); // due at once: a pass starts
    await s.idle();
    expect(flaky.loseSubmitAnswers).toBe(0);
    expect((await s.getTab(t.id))!.status).toBe('settling');
    // This ledger answers a resubmitted transaction with its earlier result, as Horizon does; stellar-core
    // alone would say tx_bad_seq. Take the harder road: the number is consumed, the hash is looked up.
    flaky.failing.set('submit', new SubmitRejected('tx_bad_seq', []));
    for (let i = 0; i < 3 && (await s.getTab(t.id))!.status !== 'settled'; i++) await s.settleTabs();
    flaky.failing.delete('submit');
    expect((await s.getTab(t.id))!.status).toBe('settled');
    expect(before - (await balanceOf(p))).toBe(10_000n);
    expect(logs.text()).toMatch(/found after a retry/);

    // A restart while 'settling': the stored envelope goes out (once) from the new process.
    const q = await payer();
    const t2 = await s.openTab(token, q.publicKey());
    flaky.failing.set('submit', new HorizonUnavailable('down (test)'));
    (await s.submitTab(t2.id, tx(t2, q, 20_000n)));
    await s.settleTabs();
    await s.stop();
    expect(tabRows().find((r) => r.id === t2.id)?.status).toBe('settling');
    const qBefore = await balanceOf(q);
    const s2 = service({ maxUnsettled: 1n });
    await s2.start();
    await s2.settleTabs();
    expect((await s2.getTab(t2.id))!.status).toBe('settled');
    expect(qBefore - (await balanceOf(q))).toBe(20_000n);
  });

  it('voids a tab whose transaction expired unsubmitted, then fills its number', async () => {
    // The bridge's clock runs 300 s behind the ledger's: it accepts a transaction the ledger finds too late.
    const s = service({ now: () => Date.now() - 300_000, maxUnsettled: 1n });
    await s.start();
    const token = (await s.requestPayment('circuit:1', 'tor')).sessionToken!;
    const p = await payer();
    const t = await s.openTab(token, p.publicKey());
    (await s.submitTab(t.id, tx(t, p, 10_000n, { maxTime: nowSec() - 10 })));
    const base = await seqOf(bridge);
    await s.settleTabs();
    await s.settleTabs();
    expect(tabRows().find((r) => r.id === t.id)).toBeUndefined(); // no longer pending
    const store = PaymentStore.open(dir);
    const row = store.tab(t.id)!;
    store.close();
    expect(row.status).toBe('filled');
    expect(row.detail).toBe('tx_too_late');
    expect(await seqOf(bridge)).toBe(base + 1n);
    expect(logs.text()).toMatch(/outside its time bounds/);
  });
});
