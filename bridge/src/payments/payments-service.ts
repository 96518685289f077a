// The payments service: payment requests, their verification and crediting (three ways in: a signed XDR the
// bridge submits, the hash of a transaction the visitor submitted, and the bridge account's payment stream
// for wallets that paid a SEP-7 URI), tab mode, sessions and their usage, and the publisher's earnings.
//
// Every way in ends in `creditFromLedger` or the tab book, and every credit in ONE store transaction keyed
// on the payment operation, so the three ways may race for one payment and it is still credited once.
// 'complete' is emitted only after a credit committed, hence exactly once per credited payment.
import { EventEmitter } from 'node:events';
import { Keypair, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import type { PaymentsConfig } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { PaymentError, isPaymentError } from './errors.js';
import { HorizonClient, HorizonUnavailable, SubmitRejected, type HorizonApi } from './horizon.js';
import { MIB, RateLimiter, RequestBook, requestJson, requestMessage, sep7PayUri, type RequestResult } from './payment-requests.js';
import { PaymentStore, type SessionRow } from './store.js';
import { noteFor, RequestNotes } from './request-notes.js';
import { StreamWatcher } from './stream-watcher.js';
import { TabBook, type TabInfo } from './tabs.js';
import type { Earnings, PaidService, PaymentComplete, PaymentNote, PaymentRequest, Receipt, SessionState } from './types.js';
import { checkRequestPayable, checkTimeBounds, matchPayment, parseTransaction, requireSignatures } from './verify.js';

/** A payment that reached the ledger this long after its request expired is still credited (a slow wallet). */
export const LATE_PAYMENT_GRACE_MS = 5 * 60_000;
const USAGE_FLUSH_MS = 1000;
const EXPIRY_SWEEP_MS = 30_000;

export interface PaymentsServiceOptions {
  config: PaymentsConfig;
  /** DATA_DIR: the database goes here. */
  dataDir: string;
  log: Logger;
  /** Tests: a fake Horizon instead of config.horizonUrl. */
  horizon?: HorizonApi;
  now?: () => number;
  /** Rate limits (burst, per minute) for new requests per visitor and in all, and tab openings per session. */
  limits?: {
    perVisitor?: { capacity: number; perMinute: number };
    global?: { capacity: number; perMinute: number };
    tabsPerSession?: { capacity: number; perMinute: number };
  };
  /** The site's name for wallets (SEP-7 `msg`): torplus.<DOMAIN>, or the onion address. */
  siteName?: () => string | undefined;
  /** Tab book tuning (tests). */
  tabs?: { abandonAfterMs?: number; tickMs?: number };
}

export interface PaymentsServiceEvents {
  complete: [PaymentComplete];
  requested: [PaymentRequest];
  /** A signed payment was verified offline (signatures, amount, memo, network), in `seconds`. */
  verified: [{ seconds: number; via: 'xdr' | 'tab' }];
}

/** Where the started service keeps its parts; undefined while stopped or disabled. */
interface Running {
  store: PaymentStore;
  keypair: Keypair;
  account: string;
  passphrase: string;
  requests: RequestBook;
  tabs: TabBook;
  timers: NodeJS.Timeout[];
  stream: StreamWatcher;
  notes: RequestNotes;
}

export class PaymentsService extends EventEmitter<PaymentsServiceEvents> implements Service {
  readonly name = 'payments';
  private readonly opts: PaymentsServiceOptions;
  private readonly log: Logger;
  private readonly horizon: HorizonApi | undefined;
  private readonly now: () => number;
  private readonly tabLimiter: RateLimiter;
  private run: Running | undefined;
  private usage = new Map<string, number>();
  private inflight = new Set<string>();

  constructor(opts: PaymentsServiceOptions) {
    super();
    this.opts = opts;
    this.log = opts.log.child({ service: 'payments' });
    this.now = opts.now ?? Date.now;
    const c = opts.config;
    this.horizon = c.seed === undefined ? undefined : (opts.horizon ?? (c.horizonUrl ? new HorizonClient(c.horizonUrl) : undefined));
    const tl = opts.limits?.tabsPerSession ?? { capacity: 3, perMinute: 6 };
    this.tabLimiter = new RateLimiter(tl.capacity, tl.perMinute);
  }

  /** A seed is configured. */
  get enabled(): boolean {
    return this.opts.config.seed !== undefined;
  }

  /** The bridge's account (G…), once started. */
  get account(): string | undefined {
    return this.run?.account;
  }

  /** The network passphrase in use, once started. */
  get networkPassphrase(): string | undefined {
    return this.run?.passphrase;
  }

  async start(signal?: AbortSignal): Promise<void> {
    const c = this.opts.config;
    if (c.seed === undefined) {
      this.log.info('payments disabled: no seed configured (set seed or SEED_FILE to charge visitors)');
      return;
    }
    if (!this.horizon) throw new Error('payments: HORIZON_URL is required');
    let keypair: Keypair;
    try {
      keypair = Keypair.fromSecret(c.seed.reveal()); // the only place the seed is revealed
    } catch {
      throw new Error('payments: the seed is not a valid Stellar secret seed'); // the SDK's message is not echoed
    }
    const account = keypair.publicKey();
    const passphrase = await this.checkNetwork(signal);
    const own = await this.horizon.account(account, signal).catch((err: Error) => {
      throw new Error(`payments: could not load the bridge's account ${account} from ${this.horizon!.url}: ${err.message}`);
    });
    if (!own) {
      const hint = c.network === 'testnet' ? ` (on the test network: https://friendbot.stellar.org/?addr=${account})`
        : c.network === 'local' ? ' (on the local ledger: its friendbot)' : '';
      throw new Error(`payments: the bridge's Stellar account ${account} does not exist on the ${c.network} network yet. ` +
        `Fund it with at least 2 XLM${hint}, then start the bridge again.`);
    }
    const store = PaymentStore.open(this.opts.dataDir);
    try {
      const requests = new RequestBook({
        store, destination: account, pricePerMibStroops: c.pricePerMibStroops, paymentMib: c.paymentMib,
        ...(c.ipfsPricePerMibStroops !== undefined ? { servicePrices: { ipfs: c.ipfsPricePerMibStroops } } : {}),
        requestTtlSeconds: c.requestTtlSeconds, now: this.now,
        ...(this.opts.limits?.perVisitor ? { perVisitor: this.opts.limits.perVisitor } : {}),
        ...(this.opts.limits?.global ? { global: this.opts.limits.global } : {}),
      });
      const tabs = new TabBook({
        store, horizon: this.horizon, keypair, passphrase, pricePerMibStroops: c.pricePerMibStroops,
        settleSeconds: c.tabSettleSeconds, maxUnsettledStroops: c.tabMaxUnsettledStroops, now: this.now, log: this.log,
        onCredit: (complete) => this.emit('complete', complete),
        ...(this.opts.tabs?.abandonAfterMs !== undefined ? { abandonAfterMs: this.opts.tabs.abandonAfterMs } : {}),
        ...(this.opts.tabs?.tickMs !== undefined ? { tickMs: this.opts.tabs.tickMs } : {}),
      });
      const stream = new StreamWatcher({
        horizon: this.horizon, store, account, log: this.log,
        credit: (hash, sig) => this.creditFromLedger(hash, 'stream', undefined, sig),
      });
      this.run = { store, keypair, account, passphrase, requests, tabs, timers: [], stream, notes: new RequestNotes(store) };
      requests.expire();
      tabs.start(own.sequence);
      this.run.timers.push(
        setInterval(() => this.flushUsage(), USAGE_FLUSH_MS).unref(),
        setInterval(() => this.run?.requests.expire(), EXPIRY_SWEEP_MS).unref(),
      );
      await stream.start(signal);
      this.log.info(`payments on the ${c.network} network (${passphrase}), account ${account}, ${formatBalance(own.balance)} XLM`);
    } catch (err) {
      await this.stop();
      store.close();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const run = this.run;
    if (!run) return;
    for (const t of run.timers) clearInterval(t);
    await run.stream.stop();
    await run.tabs.stop();
    this.flushUsage();
    this.run = undefined;
    run.store.close();
  }

  health(): Health {
    if (!this.enabled) return { ok: true, detail: 'payments disabled: no seed configured', enabled: false };
    const run = this.run;
    if (!run) return { ok: false, detail: 'payments not started', enabled: true };
    const problem = run.stream.error ?? run.tabs.error;
    return {
      ok: problem === undefined,
      detail: problem ?? `accepting payments to ${run.account}`,
      enabled: true,
      account: run.account,
      network: this.opts.config.network,
      horizon: this.horizon!.url,
      streamRecords: run.stream.records,
    };
  }

  // --- requests --------------------------------------------------------------------------------

  /**
   * The visitor's open request for `service`, or a new one. `sessionToken` puts a new request in that
   * session (credit carried across circuits); without it a new session is created and its token returned.
   */
  requestPayment(visitorKey: string, service: PaidService, sessionToken?: string): RequestResult {
    const run = this.running();
    const result = run.requests.request(visitorKey, service, sessionToken);
    if (result.created) this.emit('requested', result.request);
    return result;
  }

  getRequest(id: string): PaymentRequest | undefined {
    const r = this.running().requests.get(id);
    if (!r) return undefined;
    const { visitorKey: _v, ...request } = r;
    return request.status === 'open' && request.expiresAt <= this.now() ? { ...request, status: 'expired' } : request;
  }

  /** What the bridge saw of payments for a request that it did not credit (for the pay page). */
  notesOf(requestId: string): PaymentNote[] {
    return this.running().notes.of(requestId);
  }

  /** The SEP-7 `web+stellar:pay?…` URI of a request. */
  paymentUri(request: PaymentRequest): string {
    return sep7PayUri(request, this.running().passphrase, requestMessage(request, this.opts.siteName?.()));
  }

  /** A request as JSON for visitors and wallets (amounts as strings, the SEP-7 URI included). */
  requestJson(request: PaymentRequest): Record<string, unknown> {
    return requestJson(request, this.running().passphrase, this.opts.siteName?.());
  }

  // --- paying ----------------------------------------------------------------------------------

  /** Checks a signed transaction paying `requestId` offline, submits it to Horizon, and credits it. */
  async submitXdr(requestId: string, xdr: unknown, signal?: AbortSignal): Promise<Receipt> {
    const run = this.running();
    const request = this.requestOrThrow(requestId);
    const now = this.now();
    checkRequestPayable(request, now);
    const started = performance.now();
    const parsed = parseTransaction(xdr, run.passphrase);
    const match = matchPayment(parsed.tx, { destination: run.account, amount: request.amount, memoHash: request.memoHash });
    requireSignatures(parsed, run.passphrase, [...new Set([parsed.tx.source, match.from])]);
    checkTimeBounds(parsed.tx, Math.floor(now / 1000), { requireMaxTime: false, minRemainingSeconds: 0 });
    this.emit('verified', { seconds: (performance.now() - started) / 1000, via: 'xdr' });
    // One submission per request at a time: a double click must not pay twice.
    if (this.inflight.has(requestId)) throw new PaymentError('already_paid', `a payment for request ${requestId} is being submitted`);
    this.inflight.add(requestId);
    try {
      try {
        await this.horizon!.submit(parsed.envelope, signal);
      } catch (err) {
        if (err instanceof SubmitRejected) {
          throw new PaymentError('transaction_failed', `the network refused the transaction: ${err.txCode}${err.opCodes.length ? ` (${err.opCodes.join(', ')})` : ''}`);
        }
        throw new PaymentError('horizon_unavailable', `could not submit the transaction (${(err as Error).message}); ` +
          `if it reached the network it will be credited anyway: check the request again, or submit its hash ${parsed.hash}`);
      }
      try {
        return await this.creditFromLedger(parsed.hash, 'xdr', request, signal);
      } catch (err) {
        // The stream may have credited it first: that is this payment's receipt, not a replay by the visitor.
        if (isPaymentError(err, 'replay')) {
          const mine = run.store.receiptsOf(request.sessionId).find((r) => r.transactionHash === parsed.hash);
          if (mine) return mine;
        }
        throw err;
      }
    } finally {
      this.inflight.delete(requestId);
    }
  }

  /** Credits a transaction the visitor submitted itself, looked up on Horizon by its hash. */
  async submitHash(requestId: string, hash: unknown, signal?: AbortSignal): Promise<Receipt> {
    this.running();
    const request = this.requestOrThrow(requestId);
    if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) {
      throw new PaymentError('unknown_transaction', 'expected a transaction hash: 64 hexadecimal characters');
    }
    return this.creditFromLedger(hash.toLowerCase(), 'hash', request, signal);
  }

  /** Opens a tab for `payer` in the session of `ref` (a session token or a payment request id). */
  async openTab(ref: string, payer: string, signal?: AbortSignal): Promise<TabInfo> {
    const run = this.running();
    let session: SessionRow | undefined;
    let request: PaymentRequest | undefined;
    const byId = typeof ref === 'string' ? run.requests.get(ref) : undefined;
    if (byId) {
      if (byId.expiresAt <= this.now() && byId.status !== 'paid') throw new PaymentError('expired_request', `payment request ${ref} has expired`);
      const { visitorKey: _v, ...r } = byId;
      request = r;
      session = run.store.session(byId.sessionId);
    } else {
      session = run.requests.resolveSession(ref);
    }
    if (!session) throw new PaymentError('unknown_session', 'expected a session token or a payment request id known here');
    const wait = this.tabLimiter.take(session.id, this.now());
    if (wait > 0) {
      const secs = Math.ceil(wait / 1000);
      throw new PaymentError('rate_limited', `too many tabs opened; try again in ${secs} s`, { retryAfterSeconds: secs });
    }
    request ??= run.requests.requestFor(session, 'tor');
    return run.tabs.open(session, request, payer, signal);
  }

  /** Verifies a tab's next cumulative transaction (offline) and credits the increment at once. */
  submitTab(tabId: string, xdr: unknown): { receipt: Receipt; tab: TabInfo } {
    const started = performance.now();
    const result = this.running().tabs.submit(tabId, xdr);
    this.emit('verified', { seconds: (performance.now() - started) / 1000, via: 'tab' });
    return result;
  }

  /** A tab as its payer sees it. */
  getTab(tabId: string): TabInfo | undefined {
    const run = this.running();
    const t = run.store.tab(tabId);
    return t ? run.tabs.info(t) : undefined;
  }

  // --- sessions --------------------------------------------------------------------------------

  resolveSession(token: string): string | undefined {
    return this.running().requests.resolveSession(token)?.id;
  }

  sessionState(token: string): SessionState | undefined {
    const run = this.running();
    const s = run.requests.resolveSession(token);
    if (!s) return undefined;
    const used = s.usedBytes + (this.usage.get(s.id) ?? 0);
    return {
      sessionId: s.id, visitorKey: s.visitorKey, creditBytes: s.creditBytes, usedBytes: used,
      remainingBytes: Math.max(0, s.creditBytes - used), receipts: run.store.receiptsOf(s.id),
    };
  }

  /** Records `bytes` served on paid credit; returns the credit left. Written to disk in batches (each second). */
  consume(sessionId: string, bytes: number): number {
    const run = this.running();
    const s = run.store.session(sessionId);
    if (!s) throw new PaymentError('unknown_session', `no session ${sessionId}`);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError('bytes must be a non-negative integer');
    const pending = (this.usage.get(sessionId) ?? 0) + bytes;
    this.usage.set(sessionId, pending);
    return Math.max(0, s.creditBytes - s.usedBytes - pending);
  }

  /** Paid bytes a session has left (0 for an unknown one): where the meter starts after a restart. */
  sessionCredit(sessionId: string): number {
    const s = this.running().store.session(sessionId);
    return s ? Math.max(0, s.creditBytes - s.usedBytes - (this.usage.get(sessionId) ?? 0)) : 0;
  }

  receipts(sessionToken: string): Receipt[] {
    const run = this.running();
    const s = run.requests.resolveSession(sessionToken);
    if (!s) throw new PaymentError('unknown_session', 'the session token is not known here');
    return run.store.receiptsOf(s.id);
  }

  earnings(): Earnings {
    return this.running().store.earnings();
  }

  /** Resolves once pending stream records and tab settlements are processed (tests, shutdown). */
  async idle(): Promise<void> {
    await this.run?.stream.idle();
    await this.run?.tabs.idle();
  }

  /** Runs a tab settlement pass now (tests and the admin API). */
  async settleTabs(): Promise<void> {
    const tabs = this.running().tabs;
    tabs.kick();
    await tabs.idle();
  }

  // --- internals -------------------------------------------------------------------------------

  private running(): Running {
    if (!this.enabled) throw new PaymentError('payments_disabled', 'this bridge does not take payments (no seed configured)');
    if (!this.run) throw new PaymentError('payments_disabled', 'payments are not started yet');
    return this.run;
  }

  private requestOrThrow(id: string): PaymentRequest & { visitorKey: string } {
    const r = typeof id === 'string' ? this.running().requests.get(id) : undefined;
    if (!r) throw new PaymentError('unknown_request', `no payment request ${String(id)}`);
    return r;
  }

  /** The passphrase the bridge will use; refuses a Horizon of another network than configured. */
  private async checkNetwork(signal?: AbortSignal): Promise<string> {
    const c = this.opts.config;
    let served: string;
    try {
      served = await this.horizon!.networkPassphrase(signal);
    } catch (err) {
      throw new Error(`payments: cannot reach Horizon at ${this.horizon!.url}: ${(err as Error).message}`);
    }
    if (c.passphrase !== undefined && served !== c.passphrase) {
      throw new Error(`payments: Horizon at ${this.horizon!.url} serves the network "${served}", but the ${c.network} network ` +
        `("${c.passphrase}") is configured (PP_ENV); refusing to run on the wrong network`);
    }
    return served;
  }

  /**
   * Looks a transaction up on the ledger and credits its payment to the request its memo names (or
   * `expected`, which it must then match). Throws PaymentError: unknown_transaction, transaction_failed,
   * wrong_memo, wrong_destination, wrong_amount, expired_request, replay, horizon_unavailable…
   */
  private async creditFromLedger(hash: string, via: Receipt['via'], expected?: PaymentRequest, signal?: AbortSignal): Promise<Receipt> {
    const run = this.running();
    const info = await this.horizonCall(() => this.horizon!.transaction(hash, signal), `look up transaction ${hash}`);
    if (!info) throw new PaymentError('unknown_transaction', `the network does not know transaction ${hash} (yet?)`);
    if (!info.successful) throw new PaymentError('transaction_failed', `transaction ${hash} failed on the ledger; it paid nothing`);
    const parsed = parseTransaction(info.envelopeXdr, run.passphrase);
    if (parsed.hash !== info.hash.toLowerCase()) {
      throw new PaymentError('wrong_network', `transaction ${hash} does not hash to its id under "${run.passphrase}": Horizon is on another network`);
    }
    if (parsed.tx.source === run.account) {
      throw new PaymentError('wrong_source', `transaction ${hash} is the bridge's own (a tab settlement or a filler), credited by its tab`);
    }
    const request = expected ?? requestOfMemo(run, parsed.tx);
    let match: ReturnType<typeof matchPayment>;
    try {
      match = matchPayment(parsed.tx, { destination: run.account, amount: request.amount, memoHash: request.memoHash });
      if (info.createdAt > request.expiresAt + LATE_PAYMENT_GRACE_MS) {
        throw new PaymentError('expired_request', `transaction ${hash} reached the ledger at ${new Date(info.createdAt).toISOString()}, ` +
          `after payment request ${request.id} expired (${new Date(request.expiresAt).toISOString()})`);
      }
    } catch (err) {
      // Not credited, but seen: the visitor's pay page says what arrived.
      const note = isPaymentError(err) ? noteFor(err, parsed.tx, request, run.account) : undefined;
      if (note) run.notes.add(request.id, info.hash, note, this.now());
      throw err;
    }
    const opIds = await this.horizonCall(() => this.horizon!.operationIds(hash, signal), `list the operations of ${hash}`);
    const operationId = opIds[match.opIndex];
    if (operationId === undefined) throw new PaymentError('horizon_unavailable', `Horizon listed no operation ${match.opIndex} for ${hash}`);
    const bytes = Number((match.amount * BigInt(MIB)) / (run.requests.priceOf(request.service) || 1n));
    const full = run.store.request(request.id)!;
    const { visitorKey, ...req } = full;
    const receipt = run.store.credit({
      request: req, operationId, transactionHash: info.hash, from: match.from, amount: match.amount,
      creditBytes: Math.max(request.creditBytes, bytes), via, createdAt: this.now(),
    });
    this.log.info(`credited ${formatBalance(match.amount)} XLM from ${match.from} to request ${request.id} (${via}, operation ${operationId})`);
    this.emit('complete', { receipt, request: { ...req, status: 'paid' }, visitorKey });
    return receipt;
  }

  private async horizonCall<T>(fn: () => Promise<T>, what: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof HorizonUnavailable) throw new PaymentError('horizon_unavailable', `could not ${what}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  private flushUsage(): void {
    const run = this.run;
    if (!run || this.usage.size === 0) return;
    const batch = this.usage;
    this.usage = new Map();
    try {
      run.store.addUsage(batch);
    } catch (err) {
      for (const [k, v] of batch) this.usage.set(k, (this.usage.get(k) ?? 0) + v);
      this.log.error(`recording usage failed: ${(err as Error).message}`);
    }
  }
}

function requestOfMemo(run: Running, tx: Transaction): PaymentRequest {
  const memo = tx.memo;
  if (memo.type !== 'hash' || memo.value === null) throw new PaymentError('wrong_memo', 'the payment carries no MEMO_HASH of a payment request');
  const hex = Buffer.from(memo.value as Buffer).toString('hex');
  const r = run.store.requestByMemo(hex);
  if (!r) throw new PaymentError('wrong_memo', `no payment request has the memo ${hex}`);
  const { visitorKey: _v, ...request } = r;
  return request;
}

function formatBalance(stroops: bigint): string {
  return formatXlm(stroops).replace(/\.?0+$/, '');
}
