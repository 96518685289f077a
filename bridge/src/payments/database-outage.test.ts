// PostgreSQL going away is a fault, not a crash: /healthz says so, a visitor asking for a new payment
// request gets an error (and is throttled as usual, by the meter), wallet payments made meanwhile wait on
// the ledger and are credited once it is back, each exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import { PgLeadership } from '../cluster/pg-leadership.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { payUri } from '../devnet/ledger/testing.js';
import { startPostgres, type Postgres } from '../devnet/postgres.js';
import { PgPaymentsDatabase } from './db/pg-database.js';
import { PaymentsService } from './payments-service.js';
import { until } from '../util/test-support/wait.js';
import { capturingLogger, testConfig } from './test-support/fixtures.js';

let ledger: LedgerHandle;
let postgres: Postgres;
const dir = mkdtempSync(join(tmpdir(), 'db-outage-'));
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

it('survives PostgreSQL stopping and starting: the outage in /healthz, payments made meanwhile credited once after', async () => {
  const url = await postgres.createDatabase('outage');
  const bridge = Keypair.random();
  const wallet = Keypair.random();
  await Promise.all([ledger.friendbot(bridge.publicKey()), ledger.friendbot(wallet.publicKey())]);
  const logs = capturingLogger();
  const s = new PaymentsService({
    config: testConfig(bridge.secret(), { horizonUrl: ledger.url }), dataDir: dir, log: logs.log,
    database: () => PgPaymentsDatabase.open({ url }), leadership: new PgLeadership({ url, intervalMs: 200 }),
  });
  const credited: string[] = [];
  s.on('complete', (e) => credited.push(e.request.id));
  await s.start();
  try {
    const requests = [];
    for (let i = 0; i < 3; i++) requests.push((await s.requestPayment(`circuit:${i}`, 'tor')).request);
    await until('the stream leader', () => (s.health().leading as string[]).includes('payments-stream'), WAIT);
    await payUri(ledger, wallet, s.paymentUri(requests[0]!));
    await until('the first credit', () => credited.length === 1, WAIT);

    await postgres.stop();
    const down = await until('/healthz to say so', () => { const h = s.health(); return h.database === 'down' && h; }, WAIT);
    expect(down.ok).toBe(false);
    expect(String(down.detail)).toMatch(/^database: down/);
    await expect(s.requestPayment('circuit:9', 'tor')).rejects.toThrow();
    for (const r of requests.slice(1)) await payUri(ledger, wallet, s.paymentUri(r)); // paid while the database is away

    await postgres.start();
    await until('both waiting payments credited', () => credited.length === 3, WAIT);
    expect([...credited].sort()).toEqual(requests.map((r) => r.id).sort());
    const earnings = await s.earnings();
    expect(earnings.receipts).toBe(3);
    await until('/healthz to recover', () => s.health().database === 'up' && s.health().ok, WAIT);
    expect((await s.requestPayment('circuit:10', 'tor')).created).toBe(true);
  } finally {
    await s.stop();
  }
  expect(logs.text()).not.toContain(bridge.secret());
}, 120_000);
