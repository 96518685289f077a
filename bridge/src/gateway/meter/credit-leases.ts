// A paid session's credit, taken from the payments database in leases: this bridge holds at most a lease
// or two of a session's credit at a time, and every bridge serving the session draws from the same row
// with an atomic update. So a session paid once is honoured by every bridge and never spent twice: the
// most it can overspend is what the bridges hold unused (one lease each), and a bridge that stops gives
// its unused lease back (one that is killed loses it: at most a lease per session).
import type { Account, PaymentPort } from './meter.js';

/** One lease: 1 MiB (at 32 KiB/s throttled, or at full speed over Tor, seconds of reading). */
export const LEASE_BYTES = 1024 * 1024;
/** A new lease is taken when the account holds less than this, before it runs dry. */
export const LOW_WATER_BYTES = 256 * 1024;
/** After a lease came back empty, ask again no sooner than this (unless a payment is credited). */
const DRY_RETRY_MS = 5000;

export class CreditLeases {
  private readonly port: PaymentPort & Required<Pick<PaymentPort, 'leaseCredit'>>;
  private readonly now: () => number;
  private readonly onError: (err: Error) => void;
  private readonly inFlight = new Map<Account, Promise<number>>();
  private readonly dryUntil = new WeakMap<Account, number>();

  constructor(port: PaymentPort & Required<Pick<PaymentPort, 'leaseCredit'>>, now: () => number, onError: (err: Error) => void) {
    this.port = port;
    this.now = now;
    this.onError = onError;
  }

  /** A lease is being taken for the account (its answer decides whether it must pay). */
  pending(a: Account): boolean {
    return this.inFlight.has(a);
  }

  /**
   * Takes a lease when the session's account runs low; `granted` is called with what came (0: the
   * session has no credit left anywhere). At most one lease per account is in flight.
   */
  refill(a: Account, granted: (bytes: number) => void, force = false): void {
    // Cheapest test first: record() asks on every count, and an account with credit needs nothing.
    if (a.credit >= LOW_WATER_BYTES || !a.sessionId || this.inFlight.has(a)) return;
    if (!force && (this.dryUntil.get(a) ?? 0) > this.now()) return;
    const p = this.port.leaseCredit(a.sessionId, LEASE_BYTES);
    this.inFlight.set(a, p);
    p.then(
      (bytes) => {
        if (bytes > 0) this.dryUntil.delete(a);
        else this.dryUntil.set(a, this.now() + DRY_RETRY_MS);
        granted(bytes);
      },
      (err: Error) => {
        // The database is away: the visitor keeps what it holds, and is asked to pay only once it knows more.
        this.dryUntil.set(a, this.now() + DRY_RETRY_MS);
        this.onError(err);
        granted(0);
      },
    ).finally(() => this.inFlight.delete(a));
  }

  /** A payment was credited to the session: its credit is in the database now, so lease again at once. */
  credited(a: Account, granted: (bytes: number) => void): void {
    this.dryUntil.delete(a);
    this.refill(a, granted, true);
  }

  /** Gives back what the account holds unused (the meter forgets it, or the bridge stops). */
  giveBack(a: Account): void {
    if (!a.sessionId || a.credit <= 0) return;
    this.port.returnCredit?.(a.sessionId, a.credit);
    a.credit = 0;
  }
}
