import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PaymentError } from './errors.js';
import { PaymentStore, type CreditInput } from './store.js';
import { SqlitePaymentsDatabase } from './db/sqlite-database.js';
import type { PaymentRequest } from './types.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'payments-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function seed(store: PaymentStore, id = 'req_1'): PaymentRequest {
  store.insertSession({ id: `ses_${id}`, tokenHash: Buffer.alloc(32, id.length + id.charCodeAt(id.length - 1)), visitorKey: 'circuit:1', createdAt: 1 });
  const req: PaymentRequest = {
    id, service: 'tor', sessionId: `ses_${id}`, amount: 1_000_000n, asset: 'native', destination: 'GBRIDGE',
    memoHash: id.padEnd(64, '0'), creditBytes: 100 * 1024 * 1024, createdAt: 1, expiresAt: 10_000, status: 'open',
  };
  store.insertRequest(req, 'circuit:1');
  return req;
}

const credit = (request: PaymentRequest, op: string, amount = 1_000_000n): CreditInput => ({
  request, operationId: op, transactionHash: 'ab'.repeat(32), from: 'GPAYER', amount, creditBytes: request.creditBytes, via: 'hash', createdAt: 5,
});

describe('PaymentStore', () => {
  it('creates DATA_DIR 0700 and the database 0600 (WAL files too), and tightens a loose DATA_DIR', () => {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o755 });
    const store = PaymentStore.open(data);
    seed(store);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const f of ['payments.sqlite', 'payments.sqlite-wal', 'payments.sqlite-shm']) {
      const p = join(data, f);
      expect(existsSync(p)).toBe(true);
      expect(statSync(p).mode & 0o777).toBe(0o600);
    }
    store.close();
  });

  it('migrates by user_version, WAL with synchronous=FULL, and refuses a newer schema', () => {
    const store = PaymentStore.open(dir);
    store.close();
    const db = new Database(join(dir, 'payments.sqlite'));
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.pragma('user_version = 99');
    db.close();
    expect(() => PaymentStore.open(dir)).toThrow(/newer bridge/);
  });

  it('credits once: receipt, request paid and session credit in one transaction; a replay is refused', () => {
    const store = PaymentStore.open(dir);
    const req = seed(store);
    const receipt = store.credit(credit(req, '4294971393'));
    expect(receipt).toMatchObject({ operationId: '4294971393', amount: 1_000_000n, via: 'hash' });
    expect(store.request(req.id)!.status).toBe('paid');
    expect(store.session(req.sessionId)!.creditBytes).toBe(req.creditBytes);

    let err: unknown;
    try {
      store.credit({ ...credit(req, '4294971393'), via: 'stream' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PaymentError);
    expect((err as PaymentError).code).toBe('replay');
    expect((err as PaymentError).message).toMatch(/already credited to request req_1/);
    // Nothing of the refused credit stuck.
    expect(store.session(req.sessionId)!.creditBytes).toBe(req.creditBytes);
    expect(store.receiptsOf(req.sessionId)).toHaveLength(1);
    store.close();
  });

  it('keeps money as bigint stroops beyond 2^53', () => {
    const store = PaymentStore.open(dir);
    const req = seed(store);
    const big = 9_000_000_000_000_000_123n;
    store.credit(credit(req, '1', big));
    expect(store.receiptsOf(req.sessionId)[0]!.amount).toBe(big);
    expect(store.earnings().creditedStroops).toBe(big);
    store.close();
  });

  it('sums earnings by way and service, with tab states', () => {
    const store = PaymentStore.open(dir);
    const a = seed(store, 'req_a');
    const b = seed(store, 'req_b');
    store.credit(credit(a, '1', 100n));
    store.credit({ ...credit(b, '2', 50n), via: 'stream' });
    const tab = store.insertTab({ id: 'tab_1', requestId: a.id, sessionId: a.sessionId, payer: 'GP1', memoHash: 'c'.repeat(64), limitStroops: 1000n, openedAt: 1 }, 10n);
    store.credit({ ...credit(a, 'tab:tab_1:30', 30n), via: 'tab', tab: { id: tab.id, amount: 30n, creditedBytes: 3, latestXdr: 'X', maxTime: 99 } });
    expect(store.earnings()).toEqual({
      receipts: 3, creditedStroops: 180n, onChainStroops: 150n, unsettledTabStroops: 30n, failedTabStroops: 0n,
      byService: { tor: 180n, ipfs: 0n },
    });
    store.updateTab(tab.id, { status: 'settled', settledHash: 'h' });
    expect(store.earnings().onChainStroops).toBe(180n);
    store.close();
  });

  it('allocates tab sequence numbers in order, persisted, never below the floor', () => {
    let store = PaymentStore.open(dir);
    const req = seed(store);
    const mk = (id: string, payer: string, floor: bigint) =>
      store.insertTab({ id, requestId: req.id, sessionId: req.sessionId, payer, memoHash: id.padEnd(64, 'f'), limitStroops: 1n, openedAt: 1 }, floor).sequence;
    expect(mk('t1', 'P1', 101n)).toBe(101n);
    expect(mk('t2', 'P2', 101n)).toBe(102n);
    store.close();
    store = PaymentStore.open(dir);
    expect(mk('t3', 'P3', 50n)).toBe(103n);
    expect(mk('t4', 'P4', 200n)).toBe(200n); // the account moved on: skip ahead
    expect(store.pendingTabs().map((t) => t.sequence)).toEqual([101n, 102n, 103n, 200n]);
    // One open tab per payer.
    expect(() => mk('t5', 'P1', 1n)).toThrow(/UNIQUE/);
    store.close();
  });

  it('refuses a tab credit that is not larger than the tab holds, atomically', () => {
    const store = PaymentStore.open(dir);
    const req = seed(store);
    const tab = store.insertTab({ id: 'tab_1', requestId: req.id, sessionId: req.sessionId, payer: 'GP', memoHash: 'd'.repeat(64), limitStroops: 1000n, openedAt: 1 }, 5n);
    const inc = (amount: bigint, op: string) =>
      store.credit({ ...credit(req, op, amount), via: 'tab', creditBytes: 10, tab: { id: tab.id, amount, creditedBytes: Number(amount), latestXdr: 'X', maxTime: 9 } });
    inc(100n, 'tab:1:100');
    expect(() => inc(90n, 'tab:1:90')).toThrow(/closed or already holds a larger amount/);
    expect(store.receiptsOf(req.sessionId)).toHaveLength(1);
    expect(store.tab(tab.id)!.amount).toBe(100n);
    store.close();
  });

  it('persists values (the stream cursor) and the credit leased from a session', async () => {
    let store = PaymentStore.open(dir);
    const req = seed(store);
    store.setValue('stream_cursor', '123');
    store.credit(credit(req, 'op-used'));
    const db = new SqlitePaymentsDatabase(store);
    await db.leaseCredit(req.sessionId, 10);
    await db.leaseCredit('ses_unknown', 5);
    await db.leaseCredit(req.sessionId, 5);
    store.close();
    store = PaymentStore.open(dir);
    expect(store.getValue('stream_cursor')).toBe('123');
    expect(store.session(req.sessionId)!.usedBytes).toBe(15);
    store.close();
  });
});
