// What the payments service keeps, behind one interface with two engines: SQLite (the embedded default,
// one bridge) and PostgreSQL (DATABASE_URL, several bridges sharing one set of payments). Every method is
// asynchronous, because PostgreSQL is across a network; every guarantee the service relies on is the
// database's, not the caller's:
// - a payment operation is credited once (a primary key, not a check before an insert);
// - a session's credit is taken in leases by an atomic update, never beyond what was paid;
// - a tab's sequence number is allocated in the same transaction as the tab, so none is handed out twice.
import type { Earnings, PaidService, PaymentNote, PaymentRequest, Receipt } from '../types.js';
import type { CreditInput, SessionRow, TabRow } from './rows.js';

export type TabInsert = { id: string; requestId: string; sessionId: string; payer: string; memoHash: string; limitStroops: bigint; openedAt: number };
export type TabUpdate = Partial<Pick<TabRow, 'status' | 'settleXdr' | 'settledHash' | 'closedAt' | 'detail'>>;

export interface PaymentsDatabase {
  readonly engine: 'sqlite' | 'postgres';

  // --- persisted values (the payment stream's cursor, …) ---
  getValue(key: string): Promise<string | undefined>;
  setValue(key: string, value: string): Promise<void>;

  // --- sessions ---
  insertSession(s: { id: string; tokenHash: Buffer; visitorKey: string; createdAt: number }): Promise<void>;
  sessionByTokenHash(hash: Buffer): Promise<SessionRow | undefined>;
  session(id: string): Promise<SessionRow | undefined>;
  /** Gives back leased credit a bridge did not use (never below nothing used). */
  returnCredit(sessionId: string, bytes: number): Promise<void>;
  /**
   * Takes up to `bytes` of the session's paid credit that no bridge has taken yet, atomically, and
   * returns how many it took (0 when none is left). Several bridges serving one session can overspend
   * by at most the leases they hold, never beyond what was paid.
   */
  leaseCredit(sessionId: string, bytes: number): Promise<number>;

  // --- payment requests ---
  insertRequest(r: PaymentRequest, visitorKey: string): Promise<void>;
  request(id: string): Promise<(PaymentRequest & { visitorKey: string }) | undefined>;
  requestByMemo(memoHex: string): Promise<(PaymentRequest & { visitorKey: string }) | undefined>;
  openRequestOf(visitorKey: string, service: PaidService, now: number): Promise<(PaymentRequest & { visitorKey: string }) | undefined>;
  /** Marks open requests past their expiry; returns how many. */
  expireRequests(now: number): Promise<number>;

  // --- credits ---
  /**
   * Credits one payment operation: receipt, request paid, session credit (and the tab's amount), in one
   * transaction. Throws PaymentError 'replay' when the operation was credited before (by any bridge).
   */
  credit(c: CreditInput): Promise<Receipt>;
  hasReceipt(operationId: string): Promise<boolean>;
  receiptsOf(sessionId: string): Promise<Receipt[]>;
  earnings(): Promise<Earnings>;

  // --- tabs ---
  /** Inserts a tab with the next bridge sequence number (at least `floor`), allocated in the same transaction. */
  insertTab(t: TabInsert, floor: bigint): Promise<TabRow>;
  tab(id: string): Promise<TabRow | undefined>;
  openTabOfPayer(payer: string): Promise<TabRow | undefined>;
  /** Tabs still to settle (open, settling, void), by sequence number. */
  pendingTabs(): Promise<TabRow[]>;
  updateTab(id: string, fields: TabUpdate): Promise<void>;
  /** Closes an open tab that holds nothing yet ('void'); false when it is no longer open or a credit came first. */
  voidEmptyTab(id: string, detail: string): Promise<boolean>;
  /** Takes back the credit of a tab that was never settled (what its session has not used yet). */
  revokeTabCredit(tab: TabRow): Promise<void>;

  // --- what the pay page says about payments that were not credited ---
  addNote(requestId: string, transactionHash: string, note: PaymentNote, now: number): Promise<void>;
  notesOf(requestId: string): Promise<PaymentNote[]>;

  /** Whether the database answered the last call (SQLite, in this process: always). */
  health(): { up: boolean; detail: string };
  /** Asks the database now; resolves with whether it answered. */
  ping(): Promise<boolean>;

  close(): Promise<void>;
}
