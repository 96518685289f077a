// The sessions the meter asks about on every request, in memory: which session a token names. The meter's
// question is synchronous (it sits on the proxy's hot path); the database's answer is not (PostgreSQL is
// across a network). So a token is looked up once (`load`), and answered from here after; a token that is
// not known is remembered as such for a while, so garbage costs one lookup. (Credit is not cached: the
// meter leases it from the database.)
import { hashToken, plausibleToken } from './payment-requests.js';
import type { PaymentsDatabase } from './db/payments-database.js';

const MAX_ENTRIES = 50_000;
const UNKNOWN_FOR_MS = 30_000;

export class SessionCache {
  private readonly byToken = new Map<string, string | { unknownUntil: number }>();
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
        return row.id;
      }).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  /** A session made here: known at once. */
  created(token: string, id: string): void {
    this.put(hashToken(token).toString('hex'), id);
  }

  private put(key: string, value: string | { unknownUntil: number }): void {
    if (this.byToken.size >= MAX_ENTRIES) this.byToken.delete(this.byToken.keys().next().value!);
    this.byToken.set(key, value);
  }
}
