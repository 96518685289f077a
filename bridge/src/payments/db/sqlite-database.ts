// The embedded engine behind PaymentsDatabase: the SQLite PaymentStore in DATA_DIR (one bridge). Its
// calls are synchronous and durable when they return (WAL, synchronous=FULL); here they only take the
// interface's shape.
import type Database from 'better-sqlite3';
import { RequestNotes } from '../request-notes.js';
import { PaymentStore } from '../store.js';
import type { PaymentsDatabase, TabInsert, TabUpdate } from './payments-database.js';
import type { CreditInput } from './rows.js';
import type { PaidService, PaymentNote, PaymentRequest } from '../types.js';

export class SqlitePaymentsDatabase implements PaymentsDatabase {
  readonly engine = 'sqlite';
  readonly store: PaymentStore;
  private readonly notes: RequestNotes;
  private readonly lease: Database.Transaction<(id: string, bytes: number) => number>;
  private readonly voidEmpty: Database.Statement;
  private readonly giveBack: Database.Statement;

  constructor(store: PaymentStore) {
    this.store = store;
    this.notes = new RequestNotes(store);
    const db = store.sqlite;
    const read = db.prepare('SELECT credit_bytes - used_bytes AS left FROM sessions WHERE id = ?');
    const take = db.prepare('UPDATE sessions SET used_bytes = used_bytes + ? WHERE id = ?');
    this.giveBack = db.prepare('UPDATE sessions SET used_bytes = max(0, used_bytes - ?) WHERE id = ?');
    this.voidEmpty = db.prepare(`UPDATE tabs SET status = 'void', detail = ? WHERE id = ? AND status = 'open' AND amount = 0`);
    this.lease = db.transaction((id: string, bytes: number) => {
      const row = read.get(id) as { left: bigint } | undefined;
      const granted = Math.max(0, Math.min(bytes, Number(row?.left ?? 0)));
      if (granted > 0) take.run(granted, id);
      return granted;
    });
  }

  /** DATA_DIR/payments.sqlite (folder 0700, file 0600). */
  static open(dataDir: string): SqlitePaymentsDatabase {
    return new SqlitePaymentsDatabase(PaymentStore.open(dataDir));
  }

  async getValue(key: string) { return this.store.getValue(key); }
  async setValue(key: string, value: string) { this.store.setValue(key, value); }
  async insertSession(s: { id: string; tokenHash: Buffer; visitorKey: string; createdAt: number }) { this.store.insertSession(s); }
  async sessionByTokenHash(hash: Buffer) { return this.store.sessionByTokenHash(hash); }
  async session(id: string) { return this.store.session(id); }
  async returnCredit(sessionId: string, bytes: number) { if (bytes > 0) this.giveBack.run(bytes, sessionId); }
  async leaseCredit(sessionId: string, bytes: number) { return this.lease.immediate(sessionId, bytes); }
  async insertRequest(r: PaymentRequest, visitorKey: string) { this.store.insertRequest(r, visitorKey); }
  async request(id: string) { return this.store.request(id); }
  async requestByMemo(memoHex: string) { return this.store.requestByMemo(memoHex); }
  async openRequestOf(visitorKey: string, service: PaidService, now: number) { return this.store.openRequestOf(visitorKey, service, now); }
  async expireRequests(now: number) { return this.store.expireRequests(now); }
  async credit(c: CreditInput) { return this.store.credit(c); }
  async hasReceipt(operationId: string) { return this.store.hasReceipt(operationId); }
  async receiptsOf(sessionId: string) { return this.store.receiptsOf(sessionId); }
  async earnings() { return this.store.earnings(); }
  async insertTab(t: TabInsert, floor: bigint) { return this.store.insertTab(t, floor); }
  async tab(id: string) { return this.store.tab(id); }
  async openTabOfPayer(payer: string) { return this.store.openTabOfPayer(payer); }
  async pendingTabs() { return this.store.pendingTabs(); }
  async updateTab(id: string, fields: TabUpdate) { this.store.updateTab(id, fields); }
  async voidEmptyTab(id: string, detail: string) { return this.voidEmpty.run(detail, id).changes === 1; }
  async revokeTabCredit(tab: Parameters<PaymentStore['revokeTabCredit']>[0]) { this.store.revokeTabCredit(tab); }
  async addNote(requestId: string, transactionHash: string, note: PaymentNote, now: number) { this.notes.add(requestId, transactionHash, note, now); }
  async notesOf(requestId: string) { return this.notes.of(requestId); }
  health() { return { up: true, detail: `SQLite at ${this.store.path}` }; }
  async ping() { return true; }
  async close() { this.store.close(); }
}
