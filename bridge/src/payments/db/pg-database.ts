// PostgreSQL behind PaymentsDatabase (DATABASE_URL): the payments of several bridges in one place. Each
// guarantee is the database's: the receipts' primary key credits an operation once whichever bridge saw
// it, a lease is one UPDATE under the row's lock, and tab sequence numbers are allocated under an
// advisory transaction lock. A lost connection is an error for that call, never a crash: the pool's idle
// clients' errors are caught (an unhandled 'error' event would end the process).
import pg from 'pg';
import { PaymentError } from '../errors.js';
import type { PaidService, PaymentNote, PaymentRequest, Receipt } from '../types.js';
import type { PaymentsDatabase, TabInsert, TabUpdate } from './payments-database.js';
import { LOCK_SEQUENCE, migratePg, PG_MIGRATIONS } from './pg-schema.js';
import { earningsOf, opt, toReceipt, toRequest, toSession, toTab, type CreditInput, type Row, type TabRow } from './rows.js';

export interface PgOptions {
  url: string;
  /** Told about connection errors of idle clients (PostgreSQL restarted, network cut). */
  onError?: (err: Error) => void;
  /** Connections at most. Default 10. */
  max?: number;
}

const TAB_COLUMNS: Record<keyof TabUpdate, string> = { status: 'status', settleXdr: 'settle_xdr', settledHash: 'settled_hash', closedAt: 'closed_at', detail: 'detail' };
const MAX_NOTES = 5;

export class PgPaymentsDatabase implements PaymentsDatabase {
  readonly engine = 'postgres';
  private readonly pool: pg.Pool;
  /** Why PostgreSQL is not answering, or undefined while it is. */
  private down: string | undefined;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** Connects and migrates; throws with a clear message when the database is unreachable or newer. */
  static async open(o: PgOptions): Promise<PgPaymentsDatabase> {
    const pool = new pg.Pool({
      connectionString: o.url, max: o.max ?? 10, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000,
      query_timeout: 15_000, application_name: 'torplus-bridge',
    });
    pool.on('error', (err) => o.onError?.(err));
    try {
      await migratePg(pool, 'payments', PG_MIGRATIONS);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PgPaymentsDatabase(pool);
  }

  /** Whether PostgreSQL answered the last call, and the last connection error when it did not. */
  health(): { up: boolean; detail: string } {
    return this.down === undefined ? { up: true, detail: 'PostgreSQL answers' } : { up: false, detail: `PostgreSQL does not answer: ${this.down}` };
  }

  async ping(): Promise<boolean> {
    await this.query('SELECT 1').catch(() => undefined);
    return this.down === undefined;
  }

  /** Every query goes through here, so the database's health is known from the traffic itself. */
  private async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    try {
      const r = await this.pool.query(sql, params);
      this.down = undefined;
      return r;
    } catch (err) {
      if (connectionLost(err)) this.down = (err as Error).message || String((err as { code?: string }).code);
      throw err;
    }
  }

  private async one(sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.query(sql, params)).rows[0] as Row | undefined;
  }

  private async all(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.query(sql, params)).rows as Row[];
  }

  /** Runs `fn` in one transaction on one connection. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      if (connectionLost(err)) this.down = (err as Error).message;
      throw err;
    }
    try {
      await c.query('BEGIN');
      const v = await fn(c);
      await c.query('COMMIT');
      this.down = undefined;
      return v;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (connectionLost(err)) this.down = (err as Error).message;
      throw err;
    } finally {
      c.release();
    }
  }

  async getValue(key: string) {
    return opt((await this.one('SELECT value FROM kv WHERE key = $1', [key]))?.value, String);
  }

  async setValue(key: string, value: string) {
    await this.query('INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async insertSession(s: { id: string; tokenHash: Buffer; visitorKey: string; createdAt: number }) {
    await this.query('INSERT INTO sessions (id, token_hash, visitor_key, created_at) VALUES ($1, $2, $3, $4)', [s.id, s.tokenHash, s.visitorKey, s.createdAt]);
  }

  async sessionByTokenHash(hash: Buffer) {
    return opt(await this.one('SELECT * FROM sessions WHERE token_hash = $1', [hash]), (r) => toSession(r as Row));
  }

  async session(id: string) {
    return opt(await this.one('SELECT * FROM sessions WHERE id = $1', [id]), (r) => toSession(r as Row));
  }

  async returnCredit(sessionId: string, bytes: number) {
    if (bytes <= 0) return;
    await this.query('UPDATE sessions SET used_bytes = GREATEST(0, used_bytes - $1) WHERE id = $2', [bytes, sessionId]);
  }

  async leaseCredit(sessionId: string, bytes: number) {
    if (bytes <= 0) return 0;
    // The row lock (FOR UPDATE) makes concurrent leases of one session queue, so together they never
    // take more than credit_bytes − used_bytes.
    const r = await this.one(`WITH s AS (SELECT id, LEAST(credit_bytes - used_bytes, $2::bigint) AS g FROM sessions WHERE id = $1 FOR UPDATE)
      UPDATE sessions SET used_bytes = used_bytes + s.g FROM s WHERE sessions.id = s.id AND s.g > 0 RETURNING s.g AS granted`, [sessionId, bytes]);
    return r ? Number(r.granted) : 0;
  }

  async insertRequest(r: PaymentRequest, visitorKey: string) {
    await this.query(`INSERT INTO payment_requests (id, session_id, visitor_key, service, amount, destination, memo_hash, credit_bytes,
      created_at, expires_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [r.id, r.sessionId, visitorKey, r.service, r.amount.toString(), r.destination, r.memoHash, r.creditBytes, r.createdAt, r.expiresAt, r.status]);
  }

  async request(id: string) {
    return opt(await this.one('SELECT * FROM payment_requests WHERE id = $1', [id]), (r) => toRequest(r as Row));
  }

  async requestByMemo(memoHex: string) {
    return opt(await this.one('SELECT * FROM payment_requests WHERE memo_hash = $1', [memoHex]), (r) => toRequest(r as Row));
  }

  async openRequestOf(visitorKey: string, service: PaidService, now: number) {
    return opt(await this.one(`SELECT * FROM payment_requests WHERE visitor_key = $1 AND service = $2 AND status = 'open'
      AND expires_at > $3 ORDER BY created_at DESC LIMIT 1`, [visitorKey, service, now]), (r) => toRequest(r as Row));
  }

  async expireRequests(now: number) {
    return (await this.query(`UPDATE payment_requests SET status = 'expired' WHERE status = 'open' AND expires_at <= $1`, [now])).rowCount ?? 0;
  }

  async credit(c: CreditInput): Promise<Receipt> {
    const receipt: Receipt = {
      requestId: c.request.id, sessionId: c.request.sessionId, operationId: c.operationId, transactionHash: c.transactionHash,
      from: c.from, amount: c.amount, creditBytes: c.creditBytes, via: c.via, createdAt: c.createdAt, ...(c.tab ? { tabId: c.tab.id } : {}),
    };
    try {
      await this.tx(async (db) => {
        await db.query(`INSERT INTO receipts (operation_id, request_id, session_id, transaction_hash, from_account, amount, credit_bytes,
          via, tab_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [c.operationId, c.request.id, c.request.sessionId, c.transactionHash, c.from, c.amount.toString(), c.creditBytes, c.via, c.tab?.id ?? null, c.createdAt]);
        if (c.tab) {
          const t = c.tab;
          const changed = (await db.query(`UPDATE tabs SET amount = $1, credited_bytes = $2, latest_xdr = $3, max_time = $4,
            first_credit_at = coalesce(first_credit_at, $5) WHERE id = $6 AND status = 'open' AND amount < $1`,
          [t.amount.toString(), t.creditedBytes, t.latestXdr, t.maxTime, c.createdAt, t.id])).rowCount;
          if (changed !== 1) throw new PaymentError('tab_closed', `tab ${t.id} is closed or already holds a larger amount`);
        }
        await db.query(`UPDATE payment_requests SET status = 'paid' WHERE id = $1`, [c.request.id]);
        await db.query('UPDATE sessions SET credit_bytes = credit_bytes + $1 WHERE id = $2', [c.creditBytes, c.request.sessionId]);
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505' && (err as { constraint?: string }).constraint === 'receipts_pkey') {
        const prior = await this.one('SELECT request_id FROM receipts WHERE operation_id = $1', [c.operationId]).catch(() => undefined);
        throw new PaymentError('replay', `payment operation ${c.operationId} (transaction ${c.transactionHash}) was already credited` +
          (prior ? ` to request ${String(prior.request_id)}` : '') + '; each payment is credited once');
      }
      throw err;
    }
    return receipt;
  }

  async hasReceipt(operationId: string) {
    return (await this.one('SELECT 1 AS x FROM receipts WHERE operation_id = $1', [operationId])) !== undefined;
  }

  async receiptsOf(sessionId: string) {
    return (await this.all('SELECT * FROM receipts WHERE session_id = $1 ORDER BY created_at, operation_id', [sessionId])).map(toReceipt);
  }

  async earnings() {
    const [byVia, tabs] = await Promise.all([
      this.all(`SELECT r.via AS via, q.service AS service, count(*) AS n, coalesce(sum(r.amount), 0) AS total
        FROM receipts r JOIN payment_requests q ON q.id = r.request_id GROUP BY r.via, q.service`),
      this.all('SELECT status, coalesce(sum(amount), 0) AS total FROM tabs GROUP BY status'),
    ]);
    return earningsOf(byVia, tabs);
  }

  async insertTab(t: TabInsert, floor: bigint): Promise<TabRow> {
    return this.tx(async (db) => {
      // One allocator for every bridge: the lock lasts until this transaction ends.
      await db.query('SELECT pg_advisory_xact_lock($1)', [LOCK_SEQUENCE]);
      const stored = (await db.query(`SELECT value FROM kv WHERE key = 'next_sequence'`)).rows[0] as { value: string } | undefined;
      const seq = stored !== undefined && BigInt(stored.value) > floor ? BigInt(stored.value) : floor;
      await db.query(`INSERT INTO tabs (id, request_id, session_id, payer, sequence, memo_hash, limit_stroops, opened_at, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')`, [t.id, t.requestId, t.sessionId, t.payer, seq.toString(), t.memoHash, t.limitStroops.toString(), t.openedAt]);
      await db.query(`INSERT INTO kv (key, value) VALUES ('next_sequence', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [(seq + 1n).toString()]);
      return toTab((await db.query('SELECT * FROM tabs WHERE id = $1', [t.id])).rows[0] as Row);
    });
  }

  async tab(id: string) {
    return opt(await this.one('SELECT * FROM tabs WHERE id = $1', [id]), (r) => toTab(r as Row));
  }

  async openTabOfPayer(payer: string) {
    return opt(await this.one(`SELECT * FROM tabs WHERE payer = $1 AND status = 'open'`, [payer]), (r) => toTab(r as Row));
  }

  async pendingTabs() {
    return (await this.all(`SELECT * FROM tabs WHERE status IN ('open', 'settling', 'void') ORDER BY sequence`)).map(toTab);
  }

  async updateTab(id: string, fields: TabUpdate) {
    const keys = (Object.keys(fields) as (keyof TabUpdate)[]).filter((k) => k in TAB_COLUMNS);
    if (keys.length === 0) return;
    const sets = keys.map((k, i) => `${TAB_COLUMNS[k]} = $${i + 1}`).join(', ');
    await this.query(`UPDATE tabs SET ${sets} WHERE id = $${keys.length + 1}`, [...keys.map((k) => fields[k] ?? null), id]);
  }

  async voidEmptyTab(id: string, detail: string) {
    return (await this.query(`UPDATE tabs SET status = 'void', detail = $2 WHERE id = $1 AND status = 'open' AND amount = 0`, [id, detail])).rowCount === 1;
  }

  async revokeTabCredit(tab: TabRow) {
    await this.query('UPDATE sessions SET credit_bytes = GREATEST(used_bytes, credit_bytes - $1) WHERE id = $2', [tab.creditedBytes, tab.sessionId]);
  }

  async addNote(requestId: string, transactionHash: string, note: PaymentNote, now: number) {
    await this.query(`INSERT INTO request_notes (request_id, transaction_hash, note, created_at)
      SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM request_notes WHERE request_id = $1) < ${MAX_NOTES}
      ON CONFLICT (request_id, transaction_hash) DO NOTHING`, [requestId, transactionHash, JSON.stringify(note), now]);
  }

  async notesOf(requestId: string) {
    const out: PaymentNote[] = [];
    for (const r of await this.all('SELECT note FROM request_notes WHERE request_id = $1 ORDER BY created_at, transaction_hash', [requestId])) {
      try {
        out.push(JSON.parse(String(r.note)) as PaymentNote);
      } catch {
        // A row we did not write: skip it.
      }
    }
    return out;
  }

  async close() {
    await this.pool.end();
  }
}

/** Errors that mean PostgreSQL is not reachable (rather than a refused statement). */
function connectionLost(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // 08…: connection exceptions; 57P01–57P03: shutting down / cannot connect now.
  return /^(08|57P0[123])/.test(e.code ?? '') || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection terminated|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i.test(`${e.code ?? ''} ${e.message ?? ''}`);
}
