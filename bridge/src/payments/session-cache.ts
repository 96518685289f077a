// The sessions the meter asks about on every request, in memory: a token's session and the credit it has
// left. The meter's questions are synchronous (they sit on the proxy's hot path); the database's answers
// are not (PostgreSQL is across a network). So a token is looked up once (`load`), and answered from here
// after; a token that is not known is remembered as such for a while, so garbage costs one lookup.
import { hashToken, plausibleToken } from './payment-requests.js';
import type { PaymentsDatabase } from './db/payments-database.js';

interface Known {
  id: string;
  creditBytes: number;
  usedBytes: number;
}

const MAX_ENTRIES = 50_000;
const UNKNOWN_FOR_MS = 30_000;

export class SessionCache {
  private readonly byToken = new Map<string, string | { unknownUntil: number }>();
  private readonly sessions = new Map<string, Known>();
  private readonly loading = new Map<string, Promise<string | undefined>>();

  private readonly db: () => PaymentsDatabase;
  private readonly now: () => number;

  constructor(db: () => PaymentsDatabase, now: () => number) {
    this.db = db;
    this.now = now;
  }

  /** The token's session id; undefined when it is not a session; a promise when it must be looked up. */
  resolve(token: string): string | undefined | Promise<string | undefined> {
    if (!plausibleToken(token)) return undefined;
    const key = hashToken(token).toString('hex');
    const hit = this.byToken.get(key);
    if (typeof hit === 'string') return hit;
    if (hit && hit.unknownUntil > this.now()) return undefined;
    return this.load(key, token);
  }

  private load(key: string, token: string): Promise<string | undefined> {
    let p = this.loading.get(key);
    if (!p) {
      p = this.db().sessionByTokenHash(hashToken(token)).then((row) => {
        if (!row) {
          this.put(key, { unknownUntil: this.now() + UNKNOWN_FOR_MS });
          return undefined;
        }
        this.put(key, row.id);
        this.sessions.set(row.id, { id: row.id, creditBytes: row.creditBytes, usedBytes: row.usedBytes });
        return row.id;
      }).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  /** A session made here: known at once. */
  created(token: string, id: string): void {
    this.put(hashToken(token).toString('hex'), id);
    this.sessions.set(id, { id, creditBytes: 0, usedBytes: 0 });
  }

  /** Credit added (a payment credited to the session). */
  credited(id: string, bytes: number): void {
    const s = this.sessions.get(id);
    if (s) s.creditBytes += bytes;
  }

  /** Credit taken back (a tab revoked): read again from the database on the next load. */
  forget(id: string): void {
    this.sessions.delete(id);
  }

  /** Bytes used (reported to the database in batches by the caller). */
  used(id: string, bytes: number): void {
    const s = this.sessions.get(id);
    if (s) s.usedBytes += bytes;
  }

  /** Paid bytes the session has left, as far as this bridge knows (0 when it is not loaded). */
  credit(id: string): number {
    const s = this.sessions.get(id);
    return s ? Math.max(0, s.creditBytes - s.usedBytes) : 0;
  }

  /** The session's row is here (else `sessionRow` must be asked of the database). */
  has(id: string): boolean {
    return this.sessions.has(id);
  }

  remember(row: Known): void {
    this.sessions.set(row.id, { ...row });
  }

  private put(key: string, value: string | { unknownUntil: number }): void {
    if (this.byToken.size >= MAX_ENTRIES) this.byToken.delete(this.byToken.keys().next().value!);
    this.byToken.set(key, value);
    if (this.sessions.size > MAX_ENTRIES) this.sessions.delete(this.sessions.keys().next().value!);
  }
}
