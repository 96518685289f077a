import type { PaidService, PaymentComplete, PaymentRequest } from '../../payments/types.js';
import { TokenBucket } from './token-bucket.js';
import { CreditLeases } from './credit-leases.js';

/** What the meter needs from the payments service (injected; the meter never reaches further). */
export interface PaymentPort {
  requestPayment(visitorKey: string, service: PaidService): Promise<{ request: PaymentRequest; sessionToken?: string }>;
  /**
   * The session id behind a bearer token, or undefined for an unknown token; a promise when the answer
   * must be looked up first (then it is known synchronously after).
   */
  resolveSession(token: string): string | undefined | Promise<string | undefined>;
  /**
   * Takes up to `bytes` of a session's paid credit for this bridge (credit-leases.ts). Without it (test
   * fakes), a payment's credit is kept in the meter alone.
   */
  leaseCredit?(sessionId: string, bytes: number): Promise<number>;
  /** Gives back leased credit this bridge did not use (a forgotten account, or the bridge stopping). */
  returnCredit?(sessionId: string, bytes: number): void;
}

export interface MeterOptions {
  freeBytes: number;
  graceSeconds: number;
  throttleBytesPerSec: number;
  service: PaidService;
  payments: PaymentPort | undefined;
  onError?: (err: Error) => void;
  now?: () => number;
  /** Visitors idle this long are forgotten (their free allowance with them). */
  idleMs?: number;
}

/** One visitor's standing: free allowance, paid credit, and the throttle once unpaid past grace. */
export interface Account {
  key: string;
  bytes: number;
  freeLeft: number;
  credit: number;
  /** Bytes served while a lease of the session's credit was on its way: paid from that lease when it comes. */
  owed: number;
  paidBytes: number;
  request: PaymentRequest | undefined;
  requestedAt: number | undefined;
  throttled: boolean;
  bucket: TokenBucket | undefined;
  sessionId: string | undefined;
  /** The session's bearer token, handed to this visitor in response headers (in memory only). */
  sessionToken: string | undefined;
  lastSeen: number;
  wakers: Set<() => void>;
  pending: Promise<void> | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

/**
 * Meters visitors by the bytes they receive. A visitor is a Tor circuit (or a plain-port client)
 * until it pays; its payment request names a session, and from then on the circuit and anyone
 * presenting the session's token share one account.
 */
export class Meter {
  private readonly accounts = new Map<string, Account>();
  /** circuit:N → session:S once a request names a session. */
  private readonly aliases = new Map<string, string>();
  private readonly now: () => number;
  private sweepTimer: NodeJS.Timeout;
  private readonly listeners = new Set<(a: Account, formerKey: string | undefined) => void>();
  private readonly served = { free: 0, paid: 0 };
  /** Paid credit comes in leases from the payments database, when the port offers them. */
  private readonly leases: CreditLeases | undefined;

  constructor(private readonly opts: MeterOptions) {
    this.now = opts.now ?? Date.now;
    const port = opts.payments;
    this.leases = port?.leaseCredit
      ? new CreditLeases(port as PaymentPort & Required<Pick<PaymentPort, 'leaseCredit'>>, this.now, (err) => opts.onError?.(err))
      : undefined;
    this.sweepTimer = setInterval(() => this.sweep(), 60_000);
    this.sweepTimer.unref();
  }

  /** The account for a request: by session token when one is presented and valid, else by visitor key. */
  account(visitorKey: string, sessionToken?: string): Account {
    let key = visitorKey;
    let knownToken: string | undefined;
    if (sessionToken && this.opts.payments) {
      const sessionId = this.opts.payments.resolveSession(sessionToken);
      // Still being looked up (see prepare): the visitor's own account until then.
      if (typeof sessionId === 'string') {
        key = `session:${sessionId}`;
        knownToken = sessionToken;
      }
    }
    key = this.aliases.get(key) ?? key;
    let a = this.accounts.get(key);
    if (!a) {
      // A session's account starts without a free allowance: the visitor used it before its first payment request.
      const session = key.startsWith('session:');
      a = {
        key, bytes: 0, freeLeft: session && this.leases ? 0 : this.opts.freeBytes, credit: 0, owed: 0, paidBytes: 0, request: undefined, requestedAt: undefined,
        throttled: false, bucket: undefined, sessionId: session ? key.slice(8) : undefined, sessionToken: knownToken,
        lastSeen: this.now(), wakers: new Set(), pending: undefined, graceTimer: undefined,
      };
      this.accounts.set(key, a);
      if (a.sessionId) this.leaseFor(a);
    }
    a.lastSeen = this.now();
    return a;
  }

  /**
   * Looks up a session token the payments service does not know yet (a session from before a restart,
   * or from another bridge); resolves when account() can use it. Undefined when no lookup is needed.
   */
  prepare(sessionToken: string | undefined): Promise<void> | undefined {
    if (!sessionToken || !this.opts.payments) return undefined;
    const r = this.opts.payments.resolveSession(sessionToken);
    if (typeof r === 'string' || r === undefined) return undefined;
    return r.then(
      () => undefined,
      (err: Error) => this.opts.onError?.(err),
    );
  }

  /**
   * Calls `fn` when an account's standing changes other than by record(): a payment request made
   * (or failed), the throttle set or lifted, a circuit bound to its session. `formerKey` is the key
   * the account, or the visitor merged into it, had before. Returns the unsubscribe function. The
   * proxy workers' mirrors are kept up to date by this (see MeterHost).
   */
  onChange(fn: (a: Account, formerKey: string | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(a: Account, formerKey?: string): void {
    for (const fn of this.listeners) {
      try {
        fn(a, formerKey);
      } catch (err) {
        this.opts.onError?.(err as Error);
      }
    }
  }

  /**
   * Whether this account has used up what it may receive without paying. Not while a lease of its
   * session's credit is on its way: it may well bring some (a session paid at another bridge).
   */
  mustPay(a: Account): boolean {
    return this.opts.payments !== undefined && a.freeLeft === 0 && a.credit === 0 && !this.leases?.pending(a);
  }

  /** Bytes the account's visitor may still receive before it must pay (Infinity without payments). */
  left(a: Account): number {
    return this.opts.payments === undefined ? Infinity : a.freeLeft + a.credit;
  }

  /**
   * Milliseconds until the account is throttled if it does not pay: 0 once throttled, the grace
   * period while its payment request is being made, undefined while it need not pay.
   */
  throttleIn(a: Account): number | undefined {
    if (a.throttled) return 0;
    if (!this.mustPay(a)) return undefined;
    const grace = this.opts.graceSeconds * 1000;
    return a.requestedAt === undefined ? grace : Math.max(0, a.requestedAt + grace - this.now());
  }

  /** Counts bytes sent to the account's visitor; asks for payment when the allowance runs out. */
  record(a: Account, bytes: number): void {
    a.bytes += bytes;
    let left = bytes;
    const free = Math.min(a.freeLeft, left);
    a.freeLeft -= free;
    this.served.free += free;
    left -= free;
    if (left > 0 && a.credit > 0) {
      const paid = Math.min(a.credit, left);
      a.credit -= paid;
      a.paidBytes += paid;
      this.served.paid += paid;
      left -= paid;
    }
    if (left > 0 && this.leases?.pending(a)) a.owed += left;
    if (a.sessionId) this.leaseFor(a);
    if (this.mustPay(a)) this.ensureRequest(a);
  }

  /** Takes the next lease of the session's credit when the account runs low; lifts the throttle when it comes. */
  private leaseFor(a: Account, afterPayment = false): void {
    const leases = this.leases;
    if (!leases) return;
    const granted = (bytes: number) => {
      if (bytes > 0) {
        const settled = Math.min(bytes, a.owed);
        a.owed -= settled;
        a.paidBytes += settled;
        this.served.paid += settled;
        a.credit += bytes - settled;
        if (a.throttled || a.request) this.lift(a, a.key);
      } else if (this.mustPay(a)) {
        this.ensureRequest(a);
      }
    };
    if (afterPayment) leases.credited(a, granted);
    else leases.refill(a, granted);
  }

  /** The open payment request, once it exists. */
  request(a: Account): PaymentRequest | undefined {
    return a.request?.status === 'open' && a.request.expiresAt > this.now() ? a.request : undefined;
  }

  /** Starts a payment request (once) and the grace period after which the visitor is throttled. */
  ensureRequest(a: Account): void {
    if (a.pending || this.request(a)) return;
    const payments = this.opts.payments;
    if (!payments) return;
    a.pending = payments
      .requestPayment(a.key, this.opts.service)
      .then(({ request: req, sessionToken }) => {
        a.request = req;
        a.sessionToken ??= sessionToken;
        a.requestedAt ??= this.now();
        const former = a.key;
        this.bindSession(a, req.sessionId);
        this.armGrace(a);
        this.changed(a, former);
      })
      .catch((err: Error) => {
        // Still unpaid: throttle after the grace period all the same, and retry the request later.
        a.requestedAt ??= this.now();
        this.armGrace(a);
        this.opts.onError?.(err);
        this.changed(a);
      })
      .finally(() => (a.pending = undefined));
  }

  private armGrace(a: Account): void {
    if (a.throttled || a.graceTimer) return;
    const wait = Math.max(0, a.requestedAt! + this.opts.graceSeconds * 1000 - this.now());
    const throttle = () => {
      a.graceTimer = undefined;
      if (!this.mustPay(a)) return;
      a.throttled = true;
      // The injected clock, when there is one, also paces the throttle (tests decide what time it is).
      a.bucket = new TokenBucket(this.opts.throttleBytesPerSec, undefined, this.opts.now ?? (() => performance.now()));
      this.changed(a);
    };
    if (wait === 0) throttle();
    else {
      a.graceTimer = setTimeout(throttle, wait);
      a.graceTimer.unref();
    }
  }

  /** The circuit's account becomes the session's, so a new circuit with the token keeps it. */
  private bindSession(a: Account, sessionId: string): void {
    const key = `session:${sessionId}`;
    if (a.key === key) return;
    const existing = this.accounts.get(key);
    this.aliases.set(a.key, key);
    this.accounts.delete(a.key);
    if (existing) {
      existing.freeLeft = Math.min(existing.freeLeft, a.freeLeft);
      existing.bytes += a.bytes;
      existing.sessionToken ??= a.sessionToken;
      this.changed(existing, a.key);
      return;
    }
    a.key = key;
    a.sessionId = sessionId;
    this.accounts.set(key, a);
  }

  /**
   * Payment complete: credit the session and lift the throttle at once. With leases, the credit is in
   * the database: the throttle lifts as soon as this bridge's lease of it comes back (a round trip).
   */
  paymentComplete(e: PaymentComplete): void {
    const a = this.account(`session:${e.request.sessionId}`);
    this.aliases.set(e.visitorKey, a.key);
    if (this.leases) {
      this.changed(a, e.visitorKey);
      this.leaseFor(a, true);
      return;
    }
    a.credit += e.receipt.creditBytes;
    this.lift(a, e.visitorKey);
  }

  /** The visitor may read at full speed again: its request is settled, its throttle gone, its waiters woken. */
  private lift(a: Account, formerKey: string | undefined): void {
    a.request = undefined;
    a.requestedAt = undefined;
    a.throttled = false;
    a.bucket = undefined;
    clearTimeout(a.graceTimer);
    a.graceTimer = undefined;
    for (const wake of [...a.wakers]) wake();
    this.changed(a, formerKey);
  }

  /** Registers a wake-up for when the account's throttle lifts. */
  onRelease(a: Account, wake: () => void): () => void {
    a.wakers.add(wake);
    return () => a.wakers.delete(wake);
  }

  /** Counts for the dashboard and metrics. */
  /** Bytes served free and paid since start, over all visitors, also those since forgotten. */
  totals(): { free: number; paid: number } {
    return { ...this.served };
  }

  stats(): { visitors: number; throttled: number; freeBytes: number; paidBytes: number } {
    let throttled = 0;
    let free = 0;
    let paid = 0;
    for (const a of this.accounts.values()) {
      if (a.throttled) throttled++;
      free += this.opts.freeBytes - a.freeLeft;
      paid += a.paidBytes;
    }
    return { visitors: this.accounts.size, throttled, freeBytes: free, paidBytes: paid };
  }

  private sweep(): void {
    const idle = this.opts.idleMs ?? 30 * 60_000;
    const cutoff = this.now() - idle;
    for (const [key, a] of this.accounts) {
      // Paid sessions are kept while they hold credit (the visitor's money), unless it goes back to the database.
      if (a.lastSeen < cutoff && a.wakers.size === 0 && this.leases && !this.leases.pending(a)) this.leases.giveBack(a);
      if (a.lastSeen < cutoff && a.credit === 0 && a.wakers.size === 0) {
        clearTimeout(a.graceTimer);
        this.accounts.delete(key);
      }
    }
    for (const [from, to] of this.aliases) if (!this.accounts.has(to)) this.aliases.delete(from);
  }

  close(): void {
    clearInterval(this.sweepTimer);
    this.listeners.clear();
    // Unused leases go back to the database, for the session's next bridge (or this one's next start).
    if (this.leases) for (const a of this.accounts.values()) this.leases.giveBack(a);
    for (const a of this.accounts.values()) clearTimeout(a.graceTimer);
  }
}
