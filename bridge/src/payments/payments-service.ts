// The payments service: payment requests, crediting (crediting.ts: a signed XDR, a transaction's hash,
// the account's payment stream), tab mode (tabs.ts), sessions and their usage, and the publisher's
// earnings. What it keeps is in a PaymentsDatabase: SQLite in DATA_DIR, or PostgreSQL (DATABASE_URL)
// shared by several bridges. The meter's questions (a token's session, its credit) are answered from
// memory (session-cache.ts), since they sit on the proxy's hot path.
import { EventEmitter } from 'node:events';
import { Keypair } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import type { PaymentsConfig } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { Crediting } from './crediting.js';
import { openPaymentsDatabase } from './db/open.js';
import type { PaymentsDatabase } from './db/payments-database.js';
import type { SessionRow } from './db/rows.js';
import { PaymentError } from './errors.js';
import { HorizonClient, type HorizonApi } from './horizon.js';
import { MIB, RateLimiter, RequestBook, requestJson, requestMessage, sep7PayUri, type RequestResult } from './payment-requests.js';
import { SessionCache } from './session-cache.js';
import { StreamWatcher } from './stream-watcher.js';
import { TabBook, type TabInfo } from './tabs.js';
import { SoloLeadership, type Leadership } from '../cluster/leadership.js';
import type { Earnings, PaidService, PaymentComplete, PaymentNote, PaymentRequest, Receipt, SessionState } from './types.js';

export { LATE_PAYMENT_GRACE_MS } from './crediting.js';
const EXPIRY_SWEEP_MS = 30_000;

export interface PaymentsServiceOptions {
  config: PaymentsConfig;
  /** DATA_DIR: the SQLite database goes here (without DATABASE_URL). */
  dataDir: string;
  log: Logger;
  /** Tests: a fake Horizon instead of config.horizonUrl. */
  horizon?: HorizonApi;
  /** Tests: a database instead of the one the configuration names. */
  database?: () => Promise<PaymentsDatabase>;
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
  /**
   * Who watches the account's payment stream and settles tabs: one bridge at a time. Default: this one
   * (SoloLeadership); bridges sharing PostgreSQL compete for it (PgLeadership).
   */
  leadership?: Leadership;
}

export interface PaymentsServiceEvents {
  complete: [PaymentComplete];
  requested: [PaymentRequest];
  /** A signed payment was verified offline (signatures, amount, memo, network), in `seconds`. */
  verified: [{ seconds: number; via: 'xdr' | 'tab' }];
}

/** Where the started service keeps its parts; undefined while stopped or disabled. */
interface Running {
  db: PaymentsDatabase;
  account: string;
  passphrase: string;
  requests: RequestBook;
  tabs: TabBook;
  crediting: Crediting;
  timers: NodeJS.Timeout[];
  /** The payment stream's watcher while this bridge leads that job. */
  stream: StreamWatcher | undefined;
  /** Gives up the jobs this bridge follows. */
  unfollow: Array<() => Promise<void>>;
  leadership: Leadership;
}

export class PaymentsService extends EventEmitter<PaymentsServiceEvents> implements Service {
  readonly name = 'payments';
  private readonly opts: PaymentsServiceOptions;
  private readonly log: Logger;
  private readonly horizon: HorizonApi | undefined;
  private readonly now: () => number;
  private readonly tabLimiter: RateLimiter;
  private run: Running | undefined;
  private readonly sessions: SessionCache;

  constructor(opts: PaymentsServiceOptions) {
    super();
    this.opts = opts;
    this.log = opts.log.child({ service: 'payments' });
    this.now = opts.now ?? Date.now;
    const c = opts.config;
    this.horizon = c.seed === undefined ? undefined : (opts.horizon ?? (c.horizonUrl ? new HorizonClient(c.horizonUrl) : undefined));
    const tl = opts.limits?.tabsPerSession ?? { capacity: 3, perMinute: 6 };
    this.tabLimiter = new RateLimiter(tl.capacity, tl.perMinute);
    this.sessions = new SessionCache(() => this.running().db, this.now);
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
    const db = await (this.opts.database ?? (() => openPaymentsDatabase(c, this.opts.dataDir, this.log)))();
    try {
      const requests = new RequestBook({
        store: db, destination: account, pricePerMibStroops: c.pricePerMibStroops, paymentMib: c.paymentMib,
        ...(c.ipfsPricePerMibStroops !== undefined ? { servicePrices: { ipfs: c.ipfsPricePerMibStroops } } : {}),
        requestTtlSeconds: c.requestTtlSeconds, now: this.now,
        ...(this.opts.limits?.perVisitor ? { perVisitor: this.opts.limits.perVisitor } : {}),
        ...(this.opts.limits?.global ? { global: this.opts.limits.global } : {}),
      });
      const tabs = new TabBook({
        store: db, horizon: this.horizon, keypair, passphrase, pricePerMibStroops: c.pricePerMibStroops,
        settleSeconds: c.tabSettleSeconds, maxUnsettledStroops: c.tabMaxUnsettledStroops, now: this.now, log: this.log,
        onCredit: (complete) => this.emit('complete', complete),
        ...(this.opts.tabs?.abandonAfterMs !== undefined ? { abandonAfterMs: this.opts.tabs.abandonAfterMs } : {}),
        ...(this.opts.tabs?.tickMs !== undefined ? { tickMs: this.opts.tabs.tickMs } : {}),
      });
      const crediting = new Crediting({
        db, horizon: this.horizon, account, passphrase, priceOf: (s) => requests.priceOf(s), now: this.now, log: this.log,
        onComplete: (e) => this.emit('complete', e),
        onVerified: (seconds) => this.emit('verified', { seconds, via: 'xdr' }),
      });
      const leadership = this.opts.leadership ?? new SoloLeadership();
      const run: Running = { db, account, passphrase, requests, tabs, crediting, timers: [], stream: undefined, unfollow: [], leadership };
      this.run = run;
      await requests.expire();
      this.run.timers.push(
        // The database's health is known from the traffic; with none, a ping every few seconds keeps it current.
        setInterval(() => void db.ping(), 5000).unref(),
        setInterval(() => void this.run?.requests.expire().catch((err: Error) => this.log.warn(`expiring requests: ${err.message}`)), EXPIRY_SWEEP_MS).unref(),
      );
      // Once-only jobs: on this bridge alone, or on whichever bridge holds their lock.
      run.unfollow.push(
        leadership.follow('payments-stream', {
          lead: async () => {
            const stream = new StreamWatcher({
              horizon: this.horizon!, store: db, account, log: this.log,
              credit: (hash, sig) => crediting.fromLedger(hash, 'stream', undefined, sig),
            });
            run.stream = stream;
            await stream.start(signal);
            this.log.info('watching the account\'s payment stream (this bridge leads it)');
          },
          lose: async () => {
            const stream = run.stream;
            run.stream = undefined;
            await stream?.stop();
          },
        }),
        leadership.follow('tab-settlement', { lead: () => tabs.start(), lose: () => tabs.stop() }),
      );
      this.log.info(`payments on the ${c.network} network (${passphrase}), account ${account}, ${formatBalance(own.balance)} XLM; ${db.engine} database`);
    } catch (err) {
      await this.stop();
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    const run = this.run;
    if (!run) return;
    for (const t of run.timers) clearInterval(t);
    for (const unfollow of run.unfollow) await unfollow();
    await run.stream?.stop();
    await run.tabs.stop();
    this.run = undefined;
    await run.db.close();
  }

  health(): Health {
    if (!this.enabled) return { ok: true, detail: 'payments disabled: no seed configured', enabled: false };
    const run = this.run;
    if (!run) return { ok: false, detail: 'payments not started', enabled: true };
    const database = run.db.health();
    const problem = database.up ? (run.stream?.error ?? run.tabs.error) : `database: down (${database.detail}); visitors are served, new payments wait`;
    return {
      ok: problem === undefined,
      detail: problem ?? `accepting payments to ${run.account}`,
      enabled: true,
      account: run.account,
      network: this.opts.config.network,
      horizon: this.horizon!.url,
      database: database.up ? 'up' : 'down',
      databaseEngine: run.db.engine,
      leading: run.leadership.leading(),
      streamRecords: run.stream?.records ?? 0,
    };
  }

  // --- requests --------------------------------------------------------------------------------

  /**
   * The visitor's open request for `service`, or a new one. `sessionToken` puts a new request in that
   * session (credit carried across circuits); without it a new session is created and its token returned.
   */
  async requestPayment(visitorKey: string, service: PaidService, sessionToken?: string): Promise<RequestResult> {
    const result = await this.running().requests.request(visitorKey, service, sessionToken);
    if (result.sessionToken) this.sessions.created(result.sessionToken, result.request.sessionId);
    if (result.created) this.emit('requested', result.request);
    return result;
  }

  async getRequest(id: string): Promise<PaymentRequest | undefined> {
    const r = await this.running().requests.get(id);
    if (!r) return undefined;
    const { visitorKey: _v, ...request } = r;
    return request.status === 'open' && request.expiresAt <= this.now() ? { ...request, status: 'expired' } : request;
  }

  /** What the bridge saw of payments for a request that it did not credit (for the pay page). */
  async notesOf(requestId: string): Promise<PaymentNote[]> {
    return this.running().db.notesOf(requestId);
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
    return run.crediting.submitXdr(await this.requestOrThrow(requestId), xdr, signal);
  }

  /** Credits a transaction the visitor submitted itself, looked up on Horizon by its hash. */
  async submitHash(requestId: string, hash: unknown, signal?: AbortSignal): Promise<Receipt> {
    const run = this.running();
    return run.crediting.submitHash(await this.requestOrThrow(requestId), hash, signal);
  }

  /** Opens a tab for `payer` in the session of `ref` (a session token or a payment request id). */
  async openTab(ref: string, payer: string, signal?: AbortSignal): Promise<TabInfo> {
    const run = this.running();
    let session: SessionRow | undefined;
    let request: PaymentRequest | undefined;
    const byId = typeof ref === 'string' ? await run.requests.get(ref) : undefined;
    if (byId) {
      if (byId.expiresAt <= this.now() && byId.status !== 'paid') throw new PaymentError('expired_request', `payment request ${ref} has expired`);
      const { visitorKey: _v, ...r } = byId;
      request = r;
      session = await run.db.session(byId.sessionId);
    } else {
      session = await run.requests.resolveSession(ref);
    }
    if (!session) throw new PaymentError('unknown_session', 'expected a session token or a payment request id known here');
    const wait = this.tabLimiter.take(session.id, this.now());
    if (wait > 0) {
      const secs = Math.ceil(wait / 1000);
      throw new PaymentError('rate_limited', `too many tabs opened; try again in ${secs} s`, { retryAfterSeconds: secs });
    }
    request ??= await run.requests.requestFor(session, 'tor');
    return run.tabs.open(session, request, payer, signal);
  }

  /** Verifies a tab's next cumulative transaction (offline) and credits the increment at once. */
  async submitTab(tabId: string, xdr: unknown): Promise<{ receipt: Receipt; tab: TabInfo }> {
    const started = performance.now();
    return this.running().tabs.submit(tabId, xdr, () => this.emit('verified', { seconds: (performance.now() - started) / 1000, via: 'tab' }));
  }

  /** A tab as its payer sees it. */
  async getTab(tabId: string): Promise<TabInfo | undefined> {
    const run = this.running();
    const t = await run.db.tab(tabId);
    return t ? run.tabs.info(t) : undefined;
  }

  // --- sessions --------------------------------------------------------------------------------

  /**
   * The token's session id, from memory; a promise when it must be looked up first (a session made
   * before a restart, or by another bridge), after which the answer is in memory.
   */
  resolveSession(token: string): string | undefined | Promise<string | undefined> {
    this.running();
    return this.sessions.resolve(token);
  }

  async sessionState(token: string): Promise<SessionState | undefined> {
    const run = this.running();
    const s = await run.requests.resolveSession(token);
    if (!s) return undefined;
    const used = s.usedBytes; // used or leased by the bridges
    return {
      sessionId: s.id, visitorKey: s.visitorKey, creditBytes: s.creditBytes, usedBytes: used,
      remainingBytes: Math.max(0, s.creditBytes - used), receipts: await run.db.receiptsOf(s.id),
    };
  }

  /**
   * Takes up to `bytes` of the session's paid credit for this bridge, atomically in the database (the
   * meter's leases): several bridges serving one session never spend more than was paid.
   */
  leaseCredit(sessionId: string, bytes: number): Promise<number> {
    return this.running().db.leaseCredit(sessionId, bytes);
  }

  /** Gives back leased credit this bridge did not use. */
  async returnCredit(sessionId: string, bytes: number): Promise<void> {
    await this.running().db.returnCredit(sessionId, bytes);
  }

  async receipts(sessionToken: string): Promise<Receipt[]> {
    const run = this.running();
    const s = await run.requests.resolveSession(sessionToken);
    if (!s) throw new PaymentError('unknown_session', 'the session token is not known here');
    return run.db.receiptsOf(s.id);
  }

  earnings(): Promise<Earnings> {
    return this.running().db.earnings();
  }

  /** Resolves once pending stream records and tab settlements are processed (tests, shutdown). */
  async idle(): Promise<void> {
    await this.run?.stream?.idle();
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

  private async requestOrThrow(id: string): Promise<PaymentRequest & { visitorKey: string }> {
    const r = typeof id === 'string' ? await this.running().requests.get(id) : undefined;
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

}

function formatBalance(stroops: bigint): string {
  return formatXlm(stroops).replace(/\.?0+$/, '');
}

export { MIB };
