// Two bridges with the same Stellar account sharing one PostgreSQL (a throw-away cluster) and the local
// ledger: a wallet payment is credited once, the same transaction handed to both is credited once, tabs
// opened at both get distinct sequence numbers and all settle, a session paid at one is leased at the other
// and never spent twice, and the payment stream moves to the other bridge when its leader stops.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { payUri } from '../devnet/ledger/testing.js';
import { startPostgres, type Postgres } from '../devnet/postgres.js';
import { PgLeadership } from '../cluster/pg-leadership.js';
import { PgPaymentsDatabase } from './db/pg-database.js';
import { HorizonClient } from './horizon.js';
import { MIB } from './payment-requests.js';
import { PaymentsService } from './payments-service.js';
import { until } from '../util/test-support/wait.js';
import { capturingLogger, paymentErrorOf, tabXdr, testConfig } from './test-support/fixtures.js';
import type { PaymentComplete } from './types.js';

let ledger: LedgerHandle;
let postgres: Postgres;
const dir = mkdtempSync(join(tmpdir(), 'several-bridges-'));
const logs = capturingLogger();
const running: PaymentsService[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!.stop();
});
beforeAll(async () => {
  [ledger, postgres] = await Promise.all([startLedger(), startPostgres()]);
}, 60_000);
afterAll(async () => {
  await ledger?.close();
  await postgres?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Generous: these wait for events, and a loaded machine only makes them later. */
const WAIT = { timeoutMs: 60_000 };

async function twoBridges(name: string) {
  const url = await postgres.createDatabase(name);
  const seed = Keypair.random();
  await ledger.friendbot(seed.publicKey());
  const completes: Array<[string, PaymentComplete]> = [];
  const make = (label: string) => {
    const s = new PaymentsService({
      // A tab is due for settlement a second after its first credit; passes run when the test asks.
      config: testConfig(seed.secret(), { horizonUrl: ledger.url, pricePerMibStroops: 10_000n, paymentMib: 10, tabSettleSeconds: 1 }),
      dataDir: join(dir, `${name}-${label}`), log: logs.log,
      database: () => PgPaymentsDatabase.open({ url }),
      leadership: new PgLeadership({ url, intervalMs: 200 }),
      tabs: { tickMs: 3_600_000, abandonAfterMs: 3_600_000 },
      limits: { tabsPerSession: { capacity: 20, perMinute: 20 } },
    });
    s.on('complete', (e) => completes.push([label, e]));
    running.push(s);
    return s;
  };
  const a = make('a');
  const b = make('b');
  await Promise.all([a.start(), b.start()]);
  await until('a stream leader', () => [a, b].filter((s) => (s.health().leading as string[]).includes('payments-stream')).length === 1, WAIT);
  return { a, b, completes, account: seed.publicKey() };
}

async function funded(): Promise<Keypair> {
  const k = Keypair.random();
  await ledger.friendbot(k.publicKey());
  return k;
}

describe('two bridges on one PostgreSQL', () => {
  it('credit a wallet payment once, and the same transaction handed to both once', async () => {
    const { a, b, completes } = await twoBridges('once');
    const wallet = await funded();
    const { request } = await a.requestPayment('circuit:1', 'tor');
    const hash = await payUri(ledger, wallet, a.paymentUri(request));
    await until('the stream credit', () => completes.length >= 1, WAIT);
    const [ra, rb] = await Promise.all([paymentErrorOf(() => a.submitHash(request.id, hash)), paymentErrorOf(() => b.submitHash(request.id, hash))]);
    expect([ra.code, rb.code]).toEqual(['replay', 'replay']);
    expect((await b.earnings()).receipts).toBe(1);
    expect(completes).toHaveLength(1);

    // A transaction nobody streamed yet (the stream leader stopped), submitted to both at once: one credit.
    const leader = (a.health().leading as string[]).includes('payments-stream') ? a : b;
    const other = leader === a ? b : a;
    const second = (await other.requestPayment('circuit:2', 'tor')).request;
    await leader.stop();
    await until('the other bridge to take the stream', () => (other.health().leading as string[]).includes('payments-stream'), WAIT);
    const hash2 = await payUri(ledger, wallet, other.paymentUri(second));
    await until('the second credit', async () => (await other.earnings()).receipts === 2, WAIT);
    expect(completes.filter(([, e]) => e.request.id === second.id)).toHaveLength(1);
    expect((await paymentErrorOf(() => other.submitHash(second.id, hash2))).code).toBe('replay');
    await other.stop();
  });

  it('lease a session paid at one bridge from the other, never more than was paid', async () => {
    const { a, b } = await twoBridges('leases');
    const wallet = await funded();
    const { request, sessionToken } = await a.requestPayment('circuit:1', 'tor');
    await payUri(ledger, wallet, a.paymentUri(request));
    await until('the credit', async () => (await a.earnings()).receipts === 1, WAIT);
    expect(await b.resolveSession(sessionToken!)).toBe(request.sessionId); // the other bridge knows the session
    const grants = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).leaseCredit(request.sessionId, MIB)));
    expect(grants.reduce((x, y) => x + y, 0)).toBe(10 * MIB);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('give tabs opened at both bridges distinct sequence numbers, and settle them all', async () => {
    const { a, b, account } = await twoBridges('tabs');
    const payers = await Promise.all([funded(), funded(), funded(), funded()]);
    const tabs = await Promise.all(payers.map(async (p, i) => {
      const s = i % 2 ? a : b;
      const { request } = await s.requestPayment(`circuit:${i}`, 'tor');
      return { s, p, tab: await s.openTab(request.id, p.publicKey()) };
    }));
    expect(new Set(tabs.map((t) => t.tab.sequence)).size).toBe(4);
    const now = Math.floor(Date.now() / 1000);
    for (const { s, p, tab } of tabs) {
      await s.submitTab(tab.id, tabXdr({ bridge: account, sequence: tab.sequence, payer: p, amount: 20_000n, memoHex: tab.memoHex, passphrase: tab.networkPassphrase, maxTime: now + 600 }));
    }
    await new Promise((r) => setTimeout(r, 1100)); // all four due (a busy machine only makes them more so)
    const settler = (a.health().leading as string[]).includes('tab-settlement') ? a : b;
    await settler.settleTabs();
    const states = await Promise.all(tabs.map(({ tab }) => a.getTab(tab.id)));
    expect(states.map((t) => t!.status)).toEqual(['settled', 'settled', 'settled', 'settled']);
    expect((await a.earnings()).onChainStroops).toBe(80_000n);
    expect((await new HorizonClient(ledger.url).account(account))!.sequence).toBe(BigInt(tabs.map((t) => t.tab.sequence).sort().at(-1)!));
    await Promise.all([a.stop(), b.stop()]);
  });
});
