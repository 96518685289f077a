// The local ledger's state in SQLite (better-sqlite3, WAL): accounts, closed ledgers, transactions,
// operations and who took part in them. One connection, synchronous calls, so a submission is applied
// in one SQLite transaction and nothing interleaves with it. `dataDir` undefined = in memory.
//
// Integers come back as bigint (defaultSafeIntegers): balances and sequence numbers are int64, and
// paging tokens (TOIDs) pass 2^53 quickly. Small counters are turned into numbers by the row mappers.
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultCodes } from './codes.js';

export const DB_FILE = 'ledger.sqlite';
const SCHEMA_VERSION = '1';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledgers (
  sequence INTEGER PRIMARY KEY, hash TEXT NOT NULL, prev_hash TEXT NOT NULL, closed_at INTEGER NOT NULL,
  successful_tx_count INTEGER NOT NULL, failed_tx_count INTEGER NOT NULL, operation_count INTEGER NOT NULL,
  tx_set_operation_count INTEGER NOT NULL, total_coins INTEGER NOT NULL, fee_pool INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, balance INTEGER NOT NULL, seq INTEGER NOT NULL, seq_ledger INTEGER NOT NULL,
  seq_time INTEGER NOT NULL, subentry_count INTEGER NOT NULL, master_weight INTEGER NOT NULL,
  low_threshold INTEGER NOT NULL, med_threshold INTEGER NOT NULL, high_threshold INTEGER NOT NULL,
  flags INTEGER NOT NULL, last_modified_ledger INTEGER NOT NULL, last_modified_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
  id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, inner_hash TEXT, ledger INTEGER NOT NULL,
  source_account TEXT NOT NULL, source_account_sequence INTEGER NOT NULL, fee_account TEXT NOT NULL,
  fee_charged INTEGER NOT NULL, max_fee INTEGER NOT NULL, inner_max_fee INTEGER, operation_count INTEGER NOT NULL,
  successful INTEGER NOT NULL, created_at INTEGER NOT NULL, memo_type TEXT NOT NULL, memo TEXT, memo_bytes TEXT,
  envelope_xdr TEXT NOT NULL, result_xdr TEXT NOT NULL, signatures TEXT NOT NULL, inner_signatures TEXT,
  valid_after INTEGER, valid_before INTEGER, result_codes TEXT);
CREATE INDEX IF NOT EXISTS transactions_inner_hash ON transactions (inner_hash) WHERE inner_hash IS NOT NULL;
CREATE TABLE IF NOT EXISTS tx_participants (
  account TEXT NOT NULL, tx_id INTEGER NOT NULL, PRIMARY KEY (account, tx_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operations (
  id INTEGER PRIMARY KEY, tx_id INTEGER NOT NULL, tx_hash TEXT NOT NULL, type TEXT NOT NULL, type_i INTEGER NOT NULL,
  source_account TEXT NOT NULL, details TEXT NOT NULL, successful INTEGER NOT NULL, created_at INTEGER NOT NULL,
  is_payment INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS operations_tx ON operations (tx_id);
CREATE TABLE IF NOT EXISTS op_participants (
  account TEXT NOT NULL, op_id INTEGER NOT NULL, PRIMARY KEY (account, op_id)) WITHOUT ROWID;
`;

export interface Thresholds {
  low: number;
  med: number;
  high: number;
}

export interface Account {
  id: string;
  balance: bigint;
  seq: bigint;
  /** Ledger and close time of the last sequence-number change (CAP-21 preconditions). */
  seqLedger: number;
  seqTime: number;
  subentries: number;
  masterWeight: number;
  thresholds: Thresholds;
  flags: number;
  lastModifiedLedger: number;
  lastModifiedTime: number;
}

export interface LedgerRow {
  sequence: number;
  hash: string;
  prevHash: string;
  /** Unix seconds. */
  closedAt: number;
  successfulTxCount: number;
  failedTxCount: number;
  operationCount: number;
  txSetOperationCount: number;
  totalCoins: bigint;
  feePool: bigint;
}

export interface TxRow {
  /** TOID, also the paging token. */
  id: bigint;
  hash: string;
  /** For fee-bump envelopes: the inner transaction's hash. */
  innerHash: string | null;
  ledger: number;
  sourceAccount: string;
  sourceAccountSequence: bigint;
  feeAccount: string;
  feeCharged: bigint;
  maxFee: bigint;
  innerMaxFee: bigint | null;
  operationCount: number;
  successful: boolean;
  createdAt: number;
  memoType: string;
  memo: string | null;
  memoBytes: string | null;
  envelopeXdr: string;
  resultXdr: string;
  signatures: string[];
  innerSignatures: string[] | null;
  validAfter: number | null;
  validBefore: number | null;
  /** Horizon's result_codes, for an applied transaction that failed (tx_failed). */
  resultCodes: ResultCodes | null;
}

export interface OpRow {
  /** TOID, also the paging token. */
  id: bigint;
  txId: bigint;
  txHash: string;
  type: string;
  typeI: number;
  sourceAccount: string;
  /** The type's own Horizon fields (from, to, amount, …), all strings. */
  details: Record<string, string>;
  successful: boolean;
  createdAt: number;
  isPayment: boolean;
}

export interface PageQuery {
  /** Exclusive: records after it (asc) or before it (desc); undefined = from the start/end. */
  cursor: bigint | undefined;
  order: 'asc' | 'desc';
  limit: number;
  includeFailed: boolean;
}

export interface OpFilter {
  account?: string;
  txId?: bigint;
  paymentsOnly?: boolean;
}

const MAX_I64 = (1n << 63n) - 1n;
const n = (v: unknown): number => Number(v as bigint);
const big = (v: unknown): bigint => v as bigint;

type Row = Record<string, unknown>;

function accountFromRow(r: Row): Account {
  return {
    id: r.id as string,
    balance: big(r.balance),
    seq: big(r.seq),
    seqLedger: n(r.seq_ledger),
    seqTime: n(r.seq_time),
    subentries: n(r.subentry_count),
    masterWeight: n(r.master_weight),
    thresholds: { low: n(r.low_threshold), med: n(r.med_threshold), high: n(r.high_threshold) },
    flags: n(r.flags),
    lastModifiedLedger: n(r.last_modified_ledger),
    lastModifiedTime: n(r.last_modified_time),
  };
}

function ledgerFromRow(r: Row): LedgerRow {
  return {
    sequence: n(r.sequence),
    hash: r.hash as string,
    prevHash: r.prev_hash as string,
    closedAt: n(r.closed_at),
    successfulTxCount: n(r.successful_tx_count),
    failedTxCount: n(r.failed_tx_count),
    operationCount: n(r.operation_count),
    txSetOperationCount: n(r.tx_set_operation_count),
    totalCoins: big(r.total_coins),
    feePool: big(r.fee_pool),
  };
}

const optNum = (v: unknown): number | null => (v === null ? null : n(v));

function txFromRow(r: Row): TxRow {
  return {
    id: big(r.id),
    hash: r.hash as string,
    innerHash: (r.inner_hash as string | null) ?? null,
    ledger: n(r.ledger),
    sourceAccount: r.source_account as string,
    sourceAccountSequence: big(r.source_account_sequence),
    feeAccount: r.fee_account as string,
    feeCharged: big(r.fee_charged),
    maxFee: big(r.max_fee),
    innerMaxFee: r.inner_max_fee === null ? null : big(r.inner_max_fee),
    operationCount: n(r.operation_count),
    successful: n(r.successful) === 1,
    createdAt: n(r.created_at),
    memoType: r.memo_type as string,
    memo: (r.memo as string | null) ?? null,
    memoBytes: (r.memo_bytes as string | null) ?? null,
    envelopeXdr: r.envelope_xdr as string,
    resultXdr: r.result_xdr as string,
    signatures: JSON.parse(r.signatures as string) as string[],
    innerSignatures: r.inner_signatures === null ? null : (JSON.parse(r.inner_signatures as string) as string[]),
    validAfter: optNum(r.valid_after),
    validBefore: optNum(r.valid_before),
    resultCodes: r.result_codes === null ? null : (JSON.parse(r.result_codes as string) as ResultCodes),
  };
}

function opFromRow(r: Row): OpRow {
  return {
    id: big(r.id),
    txId: big(r.tx_id),
    txHash: r.tx_hash as string,
    type: r.type as string,
    typeI: n(r.type_i),
    sourceAccount: r.source_account as string,
    details: JSON.parse(r.details as string) as Record<string, string>,
    successful: n(r.successful) === 1,
    createdAt: n(r.created_at),
    isPayment: n(r.is_payment) === 1,
  };
}

/** Open (or create) the ledger database. Creates `dataDir` with mode 0700 when it does not exist. */
export function openDatabase(dataDir: string | undefined): Database.Database {
  let file = ':memory:';
  if (dataDir !== undefined) {
    if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    file = join(dataDir, DB_FILE);
  }
  const fresh = file === ':memory:' || !existsSync(file);
  const db = new Database(file);
  if (fresh && file !== ':memory:') chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  // WAL + NORMAL: durable across a crash of this process (not of the machine), which suits a dev ledger.
  db.pragma('synchronous = NORMAL');
  db.defaultSafeIntegers(true);
  db.exec(SCHEMA);
  return db;
}

export class Store {
  private readonly stmts = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {
    const v = this.getMeta('schema_version');
    if (v === undefined) this.setMeta('schema_version', SCHEMA_VERSION);
    else if (v !== SCHEMA_VERSION) throw new Error(`ledger database has schema version ${v}, expected ${SCHEMA_VERSION}`);
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `fn` in one SQLite transaction (a savepoint when nested); a throw rolls it back. The outermost
   * one is IMMEDIATE: it takes the write lock before reading, so a read-modify-write cannot interleave.
   */
  atomically<T>(fn: () => T): T {
    const tx = this.db.transaction(fn);
    return this.db.inTransaction ? tx() : tx.immediate();
  }

  close(): void {
    this.db.close();
  }

  // --- meta ---------------------------------------------------------------------------------------
  getMeta(key: string): string | undefined {
    const r = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return r?.value as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(
      key,
      value,
    );
  }

  // --- accounts -----------------------------------------------------------------------------------
  getAccount(id: string): Account | undefined {
    const r = this.stmt('SELECT * FROM accounts WHERE id = ?').get(id) as Row | undefined;
    return r ? accountFromRow(r) : undefined;
  }

  putAccount(a: Account): void {
    this.stmt(
      `INSERT INTO accounts (id, balance, seq, seq_ledger, seq_time, subentry_count, master_weight, low_threshold,
         med_threshold, high_threshold, flags, last_modified_ledger, last_modified_time)
       VALUES (@id, @balance, @seq, @seqLedger, @seqTime, @subentries, @masterWeight, @low, @med, @high, @flags,
         @lastModifiedLedger, @lastModifiedTime)
       ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, seq = excluded.seq, seq_ledger = excluded.seq_ledger,
         seq_time = excluded.seq_time, subentry_count = excluded.subentry_count, master_weight = excluded.master_weight,
         low_threshold = excluded.low_threshold, med_threshold = excluded.med_threshold,
         high_threshold = excluded.high_threshold, flags = excluded.flags,
         last_modified_ledger = excluded.last_modified_ledger, last_modified_time = excluded.last_modified_time`,
    ).run({
      id: a.id,
      balance: a.balance,
      seq: a.seq,
      seqLedger: a.seqLedger,
      seqTime: a.seqTime,
      subentries: a.subentries,
      masterWeight: a.masterWeight,
      low: a.thresholds.low,
      med: a.thresholds.med,
      high: a.thresholds.high,
      flags: a.flags,
      lastModifiedLedger: a.lastModifiedLedger,
      lastModifiedTime: a.lastModifiedTime,
    });
  }

  // --- ledgers ------------------------------------------------------------------------------------
  latestLedger(): LedgerRow | undefined {
    const r = this.stmt('SELECT * FROM ledgers ORDER BY sequence DESC LIMIT 1').get() as Row | undefined;
    return r ? ledgerFromRow(r) : undefined;
  }

  getLedger(sequence: number): LedgerRow | undefined {
    const r = this.stmt('SELECT * FROM ledgers WHERE sequence = ?').get(sequence) as Row | undefined;
    return r ? ledgerFromRow(r) : undefined;
  }

  insertLedger(l: LedgerRow): void {
    this.stmt(
      `INSERT INTO ledgers (sequence, hash, prev_hash, closed_at, successful_tx_count, failed_tx_count, operation_count,
         tx_set_operation_count, total_coins, fee_pool)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      l.sequence,
      l.hash,
      l.prevHash,
      l.closedAt,
      l.successfulTxCount,
      l.failedTxCount,
      l.operationCount,
      l.txSetOperationCount,
      l.totalCoins,
      l.feePool,
    );
  }

  /** Ledgers whose paging token (sequence << 32) lies beyond the cursor. */
  listLedgers(q: PageQuery): LedgerRow[] {
    const asc = q.order === 'asc';
    // token = seq << 32: after c ⇔ seq > c >> 32; before c ⇔ seq < ceil(c / 2^32).
    const bound = q.cursor === undefined ? (asc ? -1n : MAX_I64) : asc ? q.cursor >> 32n : (q.cursor + 0xffffffffn) >> 32n;
    const sql = `SELECT * FROM ledgers WHERE sequence ${asc ? '>' : '<'} ? ORDER BY sequence ${asc ? 'ASC' : 'DESC'} LIMIT ?`;
    return (this.stmt(sql).all(bound, q.limit) as Row[]).map(ledgerFromRow);
  }

  // --- transactions -------------------------------------------------------------------------------
  insertTransaction(t: TxRow, participants: Iterable<string>): void {
    this.stmt(
      `INSERT INTO transactions (id, hash, inner_hash, ledger, source_account, source_account_sequence, fee_account,
         fee_charged, max_fee, inner_max_fee, operation_count, successful, created_at, memo_type, memo, memo_bytes,
         envelope_xdr, result_xdr, signatures, inner_signatures, valid_after, valid_before, result_codes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      t.id,
      t.hash,
      t.innerHash,
      t.ledger,
      t.sourceAccount,
      t.sourceAccountSequence,
      t.feeAccount,
      t.feeCharged,
      t.maxFee,
      t.innerMaxFee,
      t.operationCount,
      t.successful ? 1 : 0,
      t.createdAt,
      t.memoType,
      t.memo,
      t.memoBytes,
      t.envelopeXdr,
      t.resultXdr,
      JSON.stringify(t.signatures),
      t.innerSignatures === null ? null : JSON.stringify(t.innerSignatures),
      t.validAfter,
      t.validBefore,
      t.resultCodes === null ? null : JSON.stringify(t.resultCodes),
    );
    const p = this.stmt('INSERT OR IGNORE INTO tx_participants (account, tx_id) VALUES (?, ?)');
    for (const account of participants) p.run(account, t.id);
  }

  /** By the envelope's hash, or by the inner hash of a fee-bump envelope (as Horizon). */
  getTransaction(hash: string): TxRow | undefined {
    const r = (this.stmt('SELECT * FROM transactions WHERE hash = ?').get(hash) ??
      this.stmt('SELECT * FROM transactions WHERE inner_hash = ?').get(hash)) as Row | undefined;
    return r ? txFromRow(r) : undefined;
  }

  listTransactions(filter: { account?: string; ledger?: number }, q: PageQuery): TxRow[] {
    const asc = q.order === 'asc';
    const where: string[] = [`t.id ${asc ? '>' : '<'} @cursor`];
    if (!q.includeFailed) where.push('t.successful = 1');
    if (filter.ledger !== undefined) where.push('t.ledger = @ledger');
    const join = filter.account !== undefined ? 'JOIN tx_participants p ON p.tx_id = t.id AND p.account = @account' : '';
    const sql = `SELECT t.* FROM transactions t ${join} WHERE ${where.join(' AND ')}
                 ORDER BY t.id ${asc ? 'ASC' : 'DESC'} LIMIT @limit`;
    const params: Record<string, unknown> = { cursor: q.cursor ?? (asc ? -1n : MAX_I64), limit: q.limit };
    if (filter.account !== undefined) params.account = filter.account;
    if (filter.ledger !== undefined) params.ledger = filter.ledger;
    return (this.stmt(sql).all(params) as Row[]).map(txFromRow);
  }

  // --- operations ---------------------------------------------------------------------------------
  insertOperation(o: OpRow, participants: Iterable<string>): void {
    this.stmt(
      `INSERT INTO operations (id, tx_id, tx_hash, type, type_i, source_account, details, successful, created_at, is_payment)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      o.id,
      o.txId,
      o.txHash,
      o.type,
      o.typeI,
      o.sourceAccount,
      JSON.stringify(o.details),
      o.successful ? 1 : 0,
      o.createdAt,
      o.isPayment ? 1 : 0,
    );
    const p = this.stmt('INSERT OR IGNORE INTO op_participants (account, op_id) VALUES (?, ?)');
    for (const account of participants) p.run(account, o.id);
  }

  getOperation(id: bigint): OpRow | undefined {
    const r = this.stmt('SELECT * FROM operations WHERE id = ?').get(id) as Row | undefined;
    return r ? opFromRow(r) : undefined;
  }

  listOperations(filter: OpFilter, q: PageQuery): OpRow[] {
    const asc = q.order === 'asc';
    const where: string[] = [`o.id ${asc ? '>' : '<'} @cursor`];
    if (!q.includeFailed) where.push('o.successful = 1');
    if (filter.paymentsOnly) where.push('o.is_payment = 1');
    if (filter.txId !== undefined) where.push('o.tx_id = @txId');
    const join = filter.account !== undefined ? 'JOIN op_participants p ON p.op_id = o.id AND p.account = @account' : '';
    const sql = `SELECT o.* FROM operations o ${join} WHERE ${where.join(' AND ')}
                 ORDER BY o.id ${asc ? 'ASC' : 'DESC'} LIMIT @limit`;
    const params: Record<string, unknown> = { cursor: q.cursor ?? (asc ? -1n : MAX_I64), limit: q.limit };
    if (filter.account !== undefined) params.account = filter.account;
    if (filter.txId !== undefined) params.txId = filter.txId;
    return (this.stmt(sql).all(params) as Row[]).map(opFromRow);
  }
}
