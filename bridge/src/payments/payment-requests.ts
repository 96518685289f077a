// Payment requests and the sessions they belong to: creation (rate-limited), lookup, expiry, and the
// SEP-7 URI a wallet opens. A session is what a visitor's credit accrues to; its bearer token is given to
// the visitor once and only its SHA-256 is stored, so a stolen database cannot impersonate anyone.
import { createHash, randomBytes } from 'node:crypto';
import { formatXlm } from '../config/amount.js';
import { PaymentError } from './errors.js';
import type { PaymentsDatabase } from './db/payments-database.js';
import type { SessionRow } from './db/rows.js';
import type { PaidService, PaymentRequest } from './types.js';

export const MIB = 1024 * 1024;

/** A random id with a readable prefix; base64url, so it is safe in URLs and headers. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * A token bucket per key: `capacity` at once, refilled continuously at `perMinute`. In memory on purpose:
 * it throttles bursts, and a restart forgetting it costs nothing.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;
  private readonly perMs: number;

  constructor(capacity: number, perMinute: number) {
    this.capacity = capacity;
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token; returns 0 on success, else the ms until one is available. */
  take(key: string, now: number): number {
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    b.tokens = Math.min(this.capacity, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      return Math.ceil((1 - b.tokens) / this.perMs);
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > 50_000) this.prune(now);
    return 0;
  }

  /** Forgets buckets that have refilled: they behave exactly like absent ones. */
  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.capacity) this.buckets.delete(k);
  }
}

export interface RequestBookOptions {
  store: PaymentsDatabase;
  /** The bridge's account. */
  destination: string;
  pricePerMibStroops: bigint;
  /** Prices of services other than the site's (IPFS_PRICE_PER_MIB for 'ipfs'); default pricePerMibStroops. */
  servicePrices?: Partial<Record<PaidService, bigint>>;
  paymentMib: number;
  requestTtlSeconds: number;
  now: () => number;
  /** New requests per visitor: burst and per minute. Default 3 and 3. */
  perVisitor?: { capacity: number; perMinute: number };
  /** New requests in all: a visitor can make new Tor circuits at will, so this bounds the total. Default 120/600. */
  global?: { capacity: number; perMinute: number };
}

export interface RequestResult {
  request: PaymentRequest;
  /** Only when a new session was created: the visitor's bearer token, shown this once. */
  sessionToken?: string;
  created: boolean;
}

export class RequestBook {
  private readonly opts: RequestBookOptions;
  private readonly perVisitor: RateLimiter;
  private readonly global: RateLimiter;

  constructor(opts: RequestBookOptions) {
    this.opts = opts;
    this.perVisitor = new RateLimiter(opts.perVisitor?.capacity ?? 3, opts.perVisitor?.perMinute ?? 3);
    this.global = new RateLimiter(opts.global?.capacity ?? 120, opts.global?.perMinute ?? 600);
  }

  /** The price of one MiB of `service`. */
  priceOf(service: PaidService): bigint {
    return this.opts.servicePrices?.[service] ?? this.opts.pricePerMibStroops;
  }

  /** What one request for `service` asks for: PAYMENT_MIB at the service's price. */
  amountOf(service: PaidService): bigint {
    return this.priceOf(service) * BigInt(this.opts.paymentMib);
  }

  /**
   * The visitor's open request for `service` if it has one (a reloaded 402 page must not mint a new memo),
   * else a new one, in the session of `sessionToken` when given, else in a new session.
   */
  async request(visitorKey: string, service: PaidService, sessionToken?: string): Promise<RequestResult> {
    const now = this.opts.now();
    const session = sessionToken === undefined ? undefined : await this.resolveSession(sessionToken);
    if (sessionToken !== undefined && !session) throw new PaymentError('unknown_session', 'the session token is not known here');
    const open = await this.opts.store.openRequestOf(visitorKey, service, now);
    if (open && (!session || open.sessionId === session.id)) return { request: stripVisitor(open), created: false };

    this.limit(visitorKey, now);
    let token: string | undefined;
    let sessionId = session?.id;
    if (!sessionId) {
      const s = await this.createSession(visitorKey);
      sessionId = s.id;
      token = s.token;
    }
    const request = await this.insert(sessionId, visitorKey, service, now);
    return token === undefined ? { request, created: true } : { request, sessionToken: token, created: true };
  }

  /** A request for a session without the per-visitor limit (opening a tab has a limiter of its own). */
  requestFor(session: SessionRow, service: PaidService): Promise<PaymentRequest> {
    return this.insert(session.id, session.visitorKey, service, this.opts.now());
  }

  get(id: string): Promise<(PaymentRequest & { visitorKey: string }) | undefined> {
    return this.opts.store.request(id);
  }

  /** Marks open requests past their expiry. */
  expire(): Promise<number> {
    return this.opts.store.expireRequests(this.opts.now());
  }

  async createSession(visitorKey: string): Promise<{ id: string; token: string }> {
    const token = randomBytes(32).toString('base64url');
    const id = newId('ses');
    await this.opts.store.insertSession({ id, tokenHash: hashToken(token), visitorKey, createdAt: this.opts.now() });
    return { id, token };
  }

  async resolveSession(token: string): Promise<SessionRow | undefined> {
    if (!plausibleToken(token)) return undefined;
    return this.opts.store.sessionByTokenHash(hashToken(token));
  }

  private limit(visitorKey: string, now: number): void {
    const wait = this.perVisitor.take(visitorKey, now) || this.global.take('*', now);
    if (wait > 0) {
      const secs = Math.ceil(wait / 1000);
      throw new PaymentError('rate_limited', `too many payment requests; try again in ${secs} s`, { retryAfterSeconds: secs });
    }
  }

  private async insert(sessionId: string, visitorKey: string, service: PaidService, now: number): Promise<PaymentRequest> {
    const request: PaymentRequest = {
      id: newId('req'),
      service,
      sessionId,
      amount: this.amountOf(service),
      asset: 'native',
      destination: this.opts.destination,
      memoHash: randomBytes(32).toString('hex'),
      creditBytes: this.opts.paymentMib * MIB,
      createdAt: now,
      expiresAt: now + this.opts.requestTtlSeconds * 1000,
      status: 'open',
    };
    await this.opts.store.insertRequest(request, visitorKey);
    return request;
  }
}

/** A session token as the bridge hands them out could be this (length only: the lookup decides). */
export function plausibleToken(token: unknown): token is string {
  return typeof token === 'string' && token.length >= 16 && token.length <= 128;
}

function stripVisitor(r: PaymentRequest & { visitorKey?: string }): PaymentRequest {
  const { visitorKey: _omit, ...rest } = r;
  return rest;
}

/** "1.5000000" → "1.5": SEP-7 amounts are plain decimals; wallets show them as given. */
function decimal(stroops: bigint): string {
  return formatXlm(stroops).replace(/\.?0+$/, '');
}

/**
 * The SEP-7 `pay` URI: `web+stellar:pay?destination=…&amount=…&memo=…&memo_type=MEMO_HASH&…`.
 * The memo of a MEMO_HASH is base64 of the 32 bytes (SEP-7), and every value is percent-encoded.
 */
export function sep7PayUri(request: PaymentRequest, networkPassphrase: string, msg?: string): string {
  const params: Array<[string, string]> = [
    ['destination', request.destination],
    ['amount', decimal(request.amount)],
    ['memo', Buffer.from(request.memoHash, 'hex').toString('base64')],
    ['memo_type', 'MEMO_HASH'],
    ['network_passphrase', networkPassphrase],
  ];
  // SEP-7 caps msg at 300 characters.
  if (msg) params.push(['msg', msg.slice(0, 300)]);
  return `web+stellar:pay?${params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
}

/** A payment request as JSON for visitors and wallets: amounts as strings (stroops are bigints). */
/** The SEP-7 `msg` a wallet shows: what the payment buys, and where (the site's name when known). */
export function requestMessage(request: PaymentRequest, site?: string): string {
  const what = request.service === 'ipfs' ? 'IPFS blocks' : site ? `reading ${site}` : 'reading this site';
  return `TorPlus: ${request.creditBytes / MIB} MiB of ${what}`;
}

export function requestJson(request: PaymentRequest, networkPassphrase: string, site?: string): Record<string, unknown> {
  return {
    id: request.id,
    service: request.service,
    status: request.status,
    amount: formatXlm(request.amount),
    amountStroops: request.amount.toString(),
    asset: 'native',
    destination: request.destination,
    memoType: 'MEMO_HASH',
    memo: Buffer.from(request.memoHash, 'hex').toString('base64'),
    memoHex: request.memoHash,
    creditBytes: request.creditBytes,
    networkPassphrase,
    createdAt: new Date(request.createdAt).toISOString(),
    expiresAt: new Date(request.expiresAt).toISOString(),
    uri: sep7PayUri(request, networkPassphrase, requestMessage(request, site)),
  };
}
