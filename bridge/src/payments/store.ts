// The payments database: sessions, payment requests, receipts (credits), tabs, and a few persisted
// values (the payment-stream cursor, the next bridge sequence number). One SQLite file in DATA_DIR.
//
// Durability: WAL with synchronous=FULL, so a credit that returned is on disk even if the bridge is killed
// with SIGKILL or the machine loses power a moment later. Crediting is ONE transaction (receipt insert,
// request marked paid, session credited), and the receipt's primary key is the payment OPERATION's id, so
// a crash can neither lose a half-written credit nor let a replay credit the same operation twice.
//
// Money is INTEGER stroops read back as bigint (defaultSafeIntegers): never a float.
import Database from 'better-sqlite3';
import { migrate, openPrivateDatabase } from '../util/sqlite.js';
import { PaymentError } from './errors.js';
import type { Earnings, PaidService, PaymentRequest, Receipt } from './types.js';
import { earningsOf, num, opt, toReceipt, toRequest, toSession, toTab, type CreditInput, type Row, type SessionRow, type TabRow } from './db/rows.js';

export type { CreditInput, SessionRow, TabRow, TabStatus } from './db/rows.js';

export const DB_FILE = 'payments.sqlite';

// Append-only: entry i migrates user_version i to i+1. Never edit a shipped entry.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     token_hash BLOB NOT NULL UNIQUE,          -- sha256 of the bearer token; the token itself is never stored
     visitor_key TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     credit_bytes INTEGER NOT NULL DEFAULT 0,
     used_bytes INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE payment_requests (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id),
     visitor_key TEXT NOT NULL,
     service TEXT NOT NULL,
     amount INTEGER NOT NULL,
     destination TEXT NOT NULL,
     memo_hash TEXT NOT NULL UNIQUE,
     credit_bytes INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'paid', 'expired'))
   );
   CREATE INDEX payment_requests_visitor ON payment_requests(visitor_key, status);
   CREATE TABLE receipts (
     operation_id TEXT PRIMARY KEY,            -- one credit per payment operation, ever
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     session_id TEXT NOT NULL REFERENCES sessions(id),
     transaction_hash TEXT NOT NULL,
     from_account TEXT NOT NULL,
     amount INTEGER NOT NULL,
     credit_bytes INTEGER NOT NULL,
     via TEXT NOT NULL,
     tab_id TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX receipts_session ON receipts(session_id);
   CREATE TABLE tabs (
     id TEXT PRIMARY KEY,
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     session_id TEXT NOT NULL REFERENCES sessions(id),
     payer TEXT NOT NULL,
     sequence INTEGER NOT NULL UNIQUE,         -- the bridge-account sequence number reserved for this tab
     memo_hash TEXT NOT NULL UNIQUE,
     limit_stroops INTEGER NOT NULL,
     amount INTEGER NOT NULL DEFAULT 0,        -- cumulative amount of the latest verified transaction
     credited_bytes INTEGER NOT NULL DEFAULT 0,
     latest_xdr TEXT,
     max_time INTEGER,
     first_credit_at INTEGER,
     opened_at INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'settling', 'settled', 'failed', 'void', 'filled', 'lost')),
     settle_xdr TEXT,                          -- the exact envelope submitted, resubmitted as is after a crash
     settled_hash TEXT,
     closed_at INTEGER,
     detail TEXT
   );
   CREATE UNIQUE INDEX tabs_one_open_per_payer ON tabs(payer) WHERE status = 'open';
   CREATE INDEX tabs_pending ON tabs(status, sequence);
   CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // What the bridge saw of payments it did not credit (short, another asset, late, wrong memo), per request,
  // so the pay page can tell the visitor. One row per transaction and request: a replayed stream adds none.
  `CREATE TABLE request_notes (
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     transaction_hash TEXT NOT NULL,
     note TEXT NOT NULL,                       -- JSON of a PaymentNote
     created_at INTEGER NOT NULL,
     PRIMARY KEY (request_id, transaction_hash)
   );`,
];






export class PaymentStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<PaymentStore['prepare']>;

  private constructor(db: Database.Database) {
    this.path = db.name;
    this.db = db;
    this.db.defaultSafeIntegers(true);
    migrate(this.db, this.path, MIGRATIONS);
    this.stmts = this.prepare();
  }

  /** Opens (creating if needed) DATA_DIR/payments.sqlite: the folder 0700, the file 0600. */
  static open(dataDir: string, fileName = DB_FILE): PaymentStore {
    return new PaymentStore(openPrivateDatabase(dataDir, fileName));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The database, for the payments folder's own small tables (request-notes.ts); nobody else. */
  get sqlite(): Database.Database {
    return this.db;
  }

  private prepare() {
    const p = (sql: string) => this.db.prepare(sql);
    return {
      insertSession: p('INSERT INTO sessions (id, token_hash, visitor_key, created_at) VALUES (?, ?, ?, ?)'),
      sessionByToken: p('SELECT * FROM sessions WHERE token_hash = ?'),
      session: p('SELECT * FROM sessions WHERE id = ?'),
      addCredit: p('UPDATE sessions SET credit_bytes = credit_bytes + ? WHERE id = ?'),
      setCredit: p('UPDATE sessions SET credit_bytes = ? WHERE id = ?'),
      insertRequest: p(`INSERT INTO payment_requests (id, session_id, visitor_key, service, amount, destination, memo_hash,
        credit_bytes, created_at, expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      request: p('SELECT * FROM payment_requests WHERE id = ?'),
      requestByMemo: p('SELECT * FROM payment_requests WHERE memo_hash = ?'),
      openRequestOf: p(`SELECT * FROM payment_requests WHERE visitor_key = ? AND service = ? AND status = 'open'
        AND expires_at > ? ORDER BY created_at DESC LIMIT 1`),
      expireRequests: p(`UPDATE payment_requests SET status = 'expired' WHERE status = 'open' AND expires_at <= ?`),
      markPaid: p(`UPDATE payment_requests SET status = 'paid' WHERE id = ?`),
      insertReceipt: p(`INSERT INTO receipts (operation_id, request_id, session_id, transaction_hash, from_account, amount,
        credit_bytes, via, tab_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      receipt: p('SELECT * FROM receipts WHERE operation_id = ?'),
      receiptsOf: p('SELECT * FROM receipts WHERE session_id = ? ORDER BY created_at, operation_id'),
      earningsByVia: p(`SELECT r.via AS via, q.service AS service, count(*) AS n, coalesce(sum(r.amount), 0) AS total
        FROM receipts r JOIN payment_requests q ON q.id = r.request_id GROUP BY r.via, q.service`),
      tabSums: p(`SELECT status, coalesce(sum(amount), 0) AS total FROM tabs GROUP BY status`),
      kvGet: p('SELECT value FROM kv WHERE key = ?'),
      kvSet: p('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      insertTab: p(`INSERT INTO tabs (id, request_id, session_id, payer, sequence, memo_hash, limit_stroops, opened_at, status)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')`),
      tab: p('SELECT * FROM tabs WHERE id = ?'),
      openTabOfPayer: p(`SELECT * FROM tabs WHERE payer = ? AND status = 'open'`),
      pendingTabs: p(`SELECT * FROM tabs WHERE status IN ('open', 'settling', 'void') ORDER BY sequence`),
      creditTab: p(`UPDATE tabs SET amount = ?, credited_bytes = ?, latest_xdr = ?, max_time = ?,
        first_credit_at = coalesce(first_credit_at, ?) WHERE id = ? AND status = 'open' AND amount < ?`),
    };
  }

  // --- persisted values ------------------------------------------------------------------------

  getValue(key: string): string | undefined {
    return (this.stmts.kvGet.get(key) as Row | undefined)?.value as string | undefined;
  }

  setValue(key: string, value: string): void {
    this.stmts.kvSet.run(key, value);
  }

  // --- sessions --------------------------------------------------------------------------------

  insertSession(s: { id: string; tokenHash: Buffer; visitorKey: string; createdAt: number }): void {
    this.stmts.insertSession.run(s.id, s.tokenHash, s.visitorKey, s.createdAt);
  }

  sessionByTokenHash(hash: Buffer): SessionRow | undefined {
    return opt(this.stmts.sessionByToken.get(hash), (r) => toSession(r as Row));
  }

  session(id: string): SessionRow | undefined {
    return opt(this.stmts.session.get(id), (r) => toSession(r as Row));
  }

  // --- payment requests ------------------------------------------------------------------------

  insertRequest(r: PaymentRequest, visitorKey: string): void {
    this.stmts.insertRequest.run(r.id, r.sessionId, visitorKey, r.service, r.amount, r.destination, r.memoHash,
      r.creditBytes, r.createdAt, r.expiresAt, r.status);
  }

  request(id: string): (PaymentRequest & { visitorKey: string }) | undefined {
    return opt(this.stmts.request.get(id), (r) => toRequest(r as Row));
  }

  requestByMemo(memoHex: string): (PaymentRequest & { visitorKey: string }) | undefined {
    return opt(this.stmts.requestByMemo.get(memoHex), (r) => toRequest(r as Row));
  }

  openRequestOf(visitorKey: string, service: PaidService, now: number): (PaymentRequest & { visitorKey: string }) | undefined {
    return opt(this.stmts.openRequestOf.get(visitorKey, service, now), (r) => toRequest(r as Row));
  }

  /** Marks open requests past their expiry; returns how many. */
  expireRequests(now: number): number {
    return this.stmts.expireRequests.run(now).changes;
  }

  // --- credits ---------------------------------------------------------------------------------

  /**
   * Credits one payment operation: receipt + request paid + session credit (+ tab amount), atomically.
   * Throws PaymentError 'replay' when the operation was credited before.
   */
  credit(c: CreditInput): Receipt {
    const receipt: Receipt = {
      requestId: c.request.id,
      sessionId: c.request.sessionId,
      operationId: c.operationId,
      transactionHash: c.transactionHash,
      from: c.from,
      amount: c.amount,
      creditBytes: c.creditBytes,
      via: c.via,
      createdAt: c.createdAt,
      ...(c.tab ? { tabId: c.tab.id } : {}),
    };
    this.db.transaction(() => {
      try {
        this.stmts.insertReceipt.run(c.operationId, c.request.id, c.request.sessionId, c.transactionHash, c.from, c.amount,
          c.creditBytes, c.via, c.tab?.id ?? null, c.createdAt);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          const prior = this.stmts.receipt.get(c.operationId) as Row | undefined;
          throw new PaymentError('replay', `payment operation ${c.operationId} (transaction ${c.transactionHash}) was already credited` +
            (prior ? ` to request ${String(prior.request_id)}` : '') + '; each payment is credited once');
        }
        throw err;
      }
      if (c.tab) {
        const t = c.tab;
        const changed = this.stmts.creditTab.run(t.amount, t.creditedBytes, t.latestXdr, t.maxTime, c.createdAt, t.id, t.amount).changes;
        if (changed !== 1) throw new PaymentError('tab_closed', `tab ${t.id} is closed or already holds a larger amount`);
      }
      this.stmts.markPaid.run(c.request.id);
      this.stmts.addCredit.run(c.creditBytes, c.request.sessionId);
    }).immediate();
    return receipt;
  }

  hasReceipt(operationId: string): boolean {
    return this.stmts.receipt.get(operationId) !== undefined;
  }

  receiptsOf(sessionId: string): Receipt[] {
    return (this.stmts.receiptsOf.all(sessionId) as Row[]).map(toReceipt);
  }

  earnings(): Earnings {
    return earningsOf(this.stmts.earningsByVia.all() as Row[], this.stmts.tabSums.all() as Row[]);
  }

  // --- tabs ------------------------------------------------------------------------------------

  /**
   * Inserts a tab with the next bridge sequence number, allocated in the same transaction so that two
   * tabs can never share one and a crash can never hand one out twice. `floor` is the lowest usable number
   * (the account's current sequence + 1, as Horizon last reported it).
   */
  insertTab(t: { id: string; requestId: string; sessionId: string; payer: string; memoHash: string; limitStroops: bigint; openedAt: number },
    floor: bigint): TabRow {
    return this.db.transaction(() => {
      const stored = this.getValue('next_sequence');
      const seq = stored !== undefined && BigInt(stored) > floor ? BigInt(stored) : floor;
      this.stmts.insertTab.run(t.id, t.requestId, t.sessionId, t.payer, seq, t.memoHash, t.limitStroops, t.openedAt);
      this.setValue('next_sequence', (seq + 1n).toString());
      return this.tab(t.id)!;
    }).immediate();
  }

  tab(id: string): TabRow | undefined {
    return opt(this.stmts.tab.get(id), (r) => toTab(r as Row));
  }

  openTabOfPayer(payer: string): TabRow | undefined {
    return opt(this.stmts.openTabOfPayer.get(payer), (r) => toTab(r as Row));
  }

  /** Tabs whose sequence number is not consumed yet, lowest first. */
  pendingTabs(): TabRow[] {
    return (this.stmts.pendingTabs.all() as Row[]).map(toTab);
  }

  updateTab(id: string, fields: Partial<Pick<TabRow, 'status' | 'settleXdr' | 'settledHash' | 'closedAt' | 'detail'>>): void {
    const cols: Record<string, string> = { status: 'status', settleXdr: 'settle_xdr', settledHash: 'settled_hash', closedAt: 'closed_at', detail: 'detail' };
    const keys = Object.keys(fields).filter((k) => k in cols) as (keyof typeof fields)[];
    if (keys.length === 0) return;
    const sql = `UPDATE tabs SET ${keys.map((k) => `${cols[k]} = ?`).join(', ')} WHERE id = ?`;
    this.db.prepare(sql).run(...keys.map((k) => fields[k] ?? null), id);
  }

  /** Takes back a failed tab's credit (never below what the session already used). */
  revokeTabCredit(tab: TabRow): void {
    this.db.transaction(() => {
      const s = this.session(tab.sessionId);
      if (!s) return;
      this.stmts.setCredit.run(Math.max(s.usedBytes, s.creditBytes - tab.creditedBytes), s.id);
    })();
  }
}
