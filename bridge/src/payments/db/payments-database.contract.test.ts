// One store test suite, run against both engines: SQLite (the embedded default) and PostgreSQL (a
// throw-away cluster started here). Besides what one bridge needs, it checks what several need: two
// handles on one database (two bridges) crediting one operation, leasing one session's credit and
// opening tabs at the same time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from '../../devnet/postgres.js';
import { PaymentError } from '../errors.js';
import type { PaymentRequest } from '../types.js';
import type { PaymentsDatabase } from './payments-database.js';
import { PgPaymentsDatabase } from './pg-database.js';
import type { CreditInput } from './rows.js';
import { SqlitePaymentsDatabase } from './sqlite-database.js';

const MIB = 1024 * 1024;
let postgres: Postgres | undefined;
let n = 0;

beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);
afterAll(async () => postgres?.destroy());

/** An engine: `fresh()` makes an empty database and returns a way to open handles on it. */
const engines: Array<[string, () => Promise<{ open: () => Promise<PaymentsDatabase>; done: () => void }>]> = [
  ['SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payments-db-'));
    return { open: async () => SqlitePaymentsDatabase.open(dir), done: () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['PostgreSQL', async () => {
    const url = await postgres!.createDatabase(`contract_${++n}`);
    return { open: () => PgPaymentsDatabase.open({ url }), done: () => undefined };
  }],
];

async function seed(db: PaymentsDatabase, id = 'req_1', creditBytes = 100 * MIB): Promise<PaymentRequest> {
  await db.insertSession({ id: `ses_${id}`, tokenHash: Buffer.from(id.padEnd(32, '#')), visitorKey: 'circuit:1', createdAt: 1 });
  const req: PaymentRequest = {
    id, service: 'tor', sessionId: `ses_${id}`, amount: 1_000_000n, asset: 'native', destination: 'GBRIDGE',
    memoHash: id.padEnd(64, '0'), creditBytes, createdAt: 1, expiresAt: 10_000, status: 'open',
  };
  await db.insertRequest(req, 'circuit:1');
  return req;
}

const credit = (request: PaymentRequest, op: string, amount = 1_000_000n): CreditInput => ({
  request, operationId: op, transactionHash: 'ab'.repeat(32), from: 'GPAYER', amount, creditBytes: request.creditBytes, via: 'hash', createdAt: 5,
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof PaymentError ? err.code : (err as Error).message;
  }
}

describe.each(engines)('PaymentsDatabase on %s', (_name, fresh) => {
  let handles: PaymentsDatabase[] = [];
  let done: () => void = () => undefined;
  let open: () => Promise<PaymentsDatabase>;
  beforeEach(async () => {
    ({ open, done } = await fresh());
    handles = [];
  });
  afterEach(async () => {
    for (const h of handles) await h.close().catch(() => undefined);
    done();
  });
  const handle = async () => {
    const h = await open();
    handles.push(h);
    return h;
  };

  it('finds sessions and requests, by token hash, memo and visitor; expires open requests', async () => {
    const db = await handle();
    const req = await seed(db);
    expect((await db.sessionByTokenHash(Buffer.from('req_1'.padEnd(32, '#'))))?.id).toBe('ses_req_1');
    expect(await db.sessionByTokenHash(Buffer.alloc(32))).toBeUndefined();
    expect((await db.request(req.id))?.visitorKey).toBe('circuit:1');
    expect((await db.requestByMemo(req.memoHash))?.id).toBe(req.id);
    expect((await db.openRequestOf('circuit:1', 'tor', 5))?.id).toBe(req.id);
    expect(await db.openRequestOf('circuit:1', 'ipfs', 5)).toBeUndefined();
    expect(await db.expireRequests(20_000)).toBe(1);
    expect((await db.request(req.id))?.status).toBe('expired');
  });

  it('credits once: receipt, request paid and session credit together; a replay is refused and changes nothing', async () => {
    const db = await handle();
    const req = await seed(db);
    expect(await db.credit(credit(req, '4294971393'))).toMatchObject({ operationId: '4294971393', amount: 1_000_000n, via: 'hash' });
    expect((await db.request(req.id))!.status).toBe('paid');
    expect((await db.session(req.sessionId))!.creditBytes).toBe(req.creditBytes);
    let err: unknown;
    await db.credit({ ...credit(req, '4294971393'), via: 'stream' }).catch((e: unknown) => (err = e));
    expect((err as PaymentError).code).toBe('replay');
    expect((err as PaymentError).message).toMatch(/already credited to request req_1/);
    expect((await db.session(req.sessionId))!.creditBytes).toBe(req.creditBytes);
    expect(await db.receiptsOf(req.sessionId)).toHaveLength(1);
    expect(await db.hasReceipt('4294971393')).toBe(true);
  });

  it('credits an operation once when two bridges see it at the same moment', async () => {
    const [a, b] = [await handle(), await handle()];
    const req = await seed(a);
    const codes = await Promise.all([codeOf(a.credit(credit(req, 'op-race'))), codeOf(b.credit({ ...credit(req, 'op-race'), via: 'stream' }))]);
    expect(codes.sort()).toEqual([undefined, 'replay'].sort());
    expect((await b.session(req.sessionId))!.creditBytes).toBe(req.creditBytes);
    expect((await a.earnings()).receipts).toBe(1);
  });

  it('keeps money as bigint stroops beyond 2^53', async () => {
    const db = await handle();
    const req = await seed(db);
    const big = 9_000_000_000_000_000_123n;
    await db.credit(credit(req, '1', big));
    expect((await db.receiptsOf(req.sessionId))[0]!.amount).toBe(big);
    expect((await db.earnings()).creditedStroops).toBe(big);
  });

  it('sums earnings by way and service, with tab states', async () => {
    const db = await handle();
    const a = await seed(db, 'req_a');
    const b = await seed(db, 'req_b');
    await db.credit(credit(a, '1', 100n));
    await db.credit({ ...credit(b, '2', 50n), via: 'stream' });
    const tab = await db.insertTab({ id: 'tab_1', requestId: a.id, sessionId: a.sessionId, payer: 'GP1', memoHash: 'c'.repeat(64), limitStroops: 1000n, openedAt: 1 }, 10n);
    await db.credit({ ...credit(a, 'tab:tab_1:30', 30n), via: 'tab', tab: { id: tab.id, amount: 30n, creditedBytes: 3, latestXdr: 'X', maxTime: 99 } });
    expect(await db.earnings()).toEqual({
      receipts: 3, creditedStroops: 180n, onChainStroops: 150n, unsettledTabStroops: 30n, failedTabStroops: 0n, byService: { tor: 180n, ipfs: 0n },
    });
    await db.updateTab(tab.id, { status: 'settled', settledHash: 'h' });
    expect((await db.earnings()).onChainStroops).toBe(180n);
    expect((await db.tab(tab.id))!.settledHash).toBe('h');
  });

  it('allocates tab sequence numbers in order, persisted, never below the floor, one open tab per payer', async () => {
    let db = await handle();
    const req = await seed(db);
    const mk = async (id: string, payer: string, floor: bigint) =>
      (await db.insertTab({ id, requestId: req.id, sessionId: req.sessionId, payer, memoHash: id.padEnd(64, 'f'), limitStroops: 1n, openedAt: 1 }, floor)).sequence;
    expect(await mk('t1', 'P1', 101n)).toBe(101n);
    expect(await mk('t2', 'P2', 101n)).toBe(102n);
    db = await handle(); // another handle: a restart, or another bridge
    expect(await mk('t3', 'P3', 50n)).toBe(103n);
    expect(await mk('t4', 'P4', 200n)).toBe(200n);
    expect((await db.pendingTabs()).map((t) => t.sequence)).toEqual([101n, 102n, 103n, 200n]);
    expect((await db.openTabOfPayer('P2'))?.id).toBe('t2');
    await expect(mk('t5', 'P1', 1n)).rejects.toThrow();
    expect(await mk('t6', 'P6', 1n)).toBe(201n); // the refused tab took no number
  });

  it('never gives two bridges opening tabs at once the same sequence number', async () => {
    const [a, b] = [await handle(), await handle()];
    const req = await seed(a);
    const open = (db: PaymentsDatabase, i: number) =>
      db.insertTab({ id: `t${i}`, requestId: req.id, sessionId: req.sessionId, payer: `P${i}`, memoHash: `${i}`.padEnd(64, 'e'), limitStroops: 1n, openedAt: 1 }, 1000n);
    const tabs = await Promise.all(Array.from({ length: 20 }, (_, i) => open(i % 2 ? a : b, i)));
    const seqs = tabs.map((t) => t.sequence).sort((x, y) => (x < y ? -1 : 1));
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => 1000n + BigInt(i)));
  });

  it('refuses a tab credit that is not larger than the tab holds, atomically; revokes an unsettled tab’s unused credit', async () => {
    const db = await handle();
    const req = await seed(db);
    const tab = await db.insertTab({ id: 'tab_1', requestId: req.id, sessionId: req.sessionId, payer: 'GP', memoHash: 'd'.repeat(64), limitStroops: 1000n, openedAt: 1 }, 5n);
    const inc = (amount: bigint, op: string) =>
      db.credit({ ...credit(req, op, amount), via: 'tab', creditBytes: 1000, tab: { id: tab.id, amount, creditedBytes: 1000, latestXdr: 'X', maxTime: 9 } });
    await inc(100n, 'tab:1:100');
    expect(await codeOf(inc(90n, 'tab:1:90'))).toBe('tab_closed');
    expect(await db.receiptsOf(req.sessionId)).toHaveLength(1);
    expect((await db.tab(tab.id))!.amount).toBe(100n);
    expect(await db.leaseCredit(req.sessionId, 400)).toBe(400); // used (leased) by a bridge
    await db.revokeTabCredit((await db.tab(tab.id))!);
    expect((await db.session(req.sessionId))!.creditBytes).toBe(400); // what was used stays paid for
  });

  it('hands out a session’s credit in leases, never more than was paid, even to two bridges at once', async () => {
    const [a, b] = [await handle(), await handle()];
    const req = await seed(a, 'req_l', 10 * MIB);
    await a.credit(credit(req, 'op-l'));
    const grants = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).leaseCredit(req.sessionId, MIB)));
    expect(grants.reduce((x, y) => x + y, 0)).toBe(10 * MIB);
    expect(grants.filter((g) => g === MIB)).toHaveLength(10);
    expect(await a.leaseCredit(req.sessionId, MIB)).toBe(0);
    expect(await a.leaseCredit('ses_unknown', MIB)).toBe(0);
    expect((await b.session(req.sessionId))!.usedBytes).toBe(10 * MIB);
    // A bridge gives back what it did not use: another can take it.
    await a.returnCredit(req.sessionId, MIB / 2);
    expect(await b.leaseCredit(req.sessionId, MIB)).toBe(MIB / 2);
    await a.returnCredit(req.sessionId, 100 * MIB);
    expect((await a.session(req.sessionId))!.usedBytes).toBe(0); // never below nothing used
  });

  it('persists values across handles', async () => {
    const db = await handle();
    await db.setValue('stream_cursor', '123');
    await db.setValue('stream_cursor', '124');
    const other = await handle();
    expect(await other.getValue('stream_cursor')).toBe('124');
    expect(await other.getValue('nothing')).toBeUndefined();
  });

  it('keeps one note per request and transaction, five at most', async () => {
    const db = await handle();
    const req = await seed(db);
    await db.addNote(req.id, 'tx1', { kind: 'short', received: '1', asked: '2' }, 1);
    await db.addNote(req.id, 'tx1', { kind: 'short', received: '1', asked: '2' }, 2);
    expect(await db.notesOf(req.id)).toEqual([{ kind: 'short', received: '1', asked: '2' }]);
    for (let i = 2; i < 10; i++) await db.addNote(req.id, `tx${i}`, { kind: 'expired', received: String(i) }, i);
    expect(await db.notesOf(req.id)).toHaveLength(5);
  });
});

describe('PostgreSQL schema versions', () => {
  it('migrates once for bridges starting together, and refuses a database written by a newer bridge', async () => {
    const url = await postgres!.createDatabase('versions');
    const both = await Promise.all([PgPaymentsDatabase.open({ url }), PgPaymentsDatabase.open({ url })]);
    for (const d of both) await d.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    expect((await c.query(`SELECT version FROM torplus_schema WHERE component = 'payments'`)).rows).toEqual([{ version: 1 }]);
    await c.query(`UPDATE torplus_schema SET version = 99 WHERE component = 'payments'`);
    await c.end();
    await expect(PgPaymentsDatabase.open({ url })).rejects.toThrow('written by a newer bridge (schema 99, this one knows 1); upgrade this bridge');
  });

  it('says so clearly when PostgreSQL cannot be reached', async () => {
    await expect(PgPaymentsDatabase.open({ url: 'postgres://postgres@127.0.0.1:9/none' })).rejects.toThrow(/ECONNREFUSED|connect/);
  });
});
