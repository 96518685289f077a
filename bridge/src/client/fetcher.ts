// The download loop: GET through tor's SOCKS port, stream to FILE.part, pay when the bridge asks, resume.
//
// How the bridge's contract is used:
//   - every request carries `Accept-Payment: stellar` (so a visitor that must pay gets 402 + the payment
//     request instead of throttled content) and, once known, `TorPlus-Session: <token>` (the visitor across
//     circuits). The token is taken from any response's TorPlus-Session header.
//   - 402: the body is the payment request (else it is fetched from the TorPlus-Payment-Request URL); it is
//     paid (payer.ts) and the request is sent again, with `Range: bytes=<have>-` when bytes were received.
//   - a response that started inside the free allowance can be throttled midway (no 402 possible any more):
//     when its rate falls below `crawl.bytesPerSec` (or a quarter of its own peak) for `crawl.windowMs`, a
//     PROBE (GET with `Range: bytes=0-0` and Accept-Payment) asks whether payment is due; if it answers 402,
//     the client pays. If the response is still slow `crawl.recoverMs` after the payment (the bridge did not
//     lift the throttle of a running response) and the server does ranges, it is aborted and resumed with
//     Range. A probe that finds nothing to pay backs off (the link is just slow).
//   - a cut response is resumed with `Range: bytes=<have>-` and `If-Range` (strong ETag, else Last-Modified);
//     a 200 to a ranged request means the server ignored Range (or the file changed): start over.
//
// Safety rules about money: one payment at a time; a 402 to a request sent before the last payment completed
// is stale (asked again, not paid); and after a payment, the next one is made only once at least half of the
// credit it bought has arrived (else the client waits and asks again, then gives up): a bridge that keeps
// asking cannot drain --max-spend.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Keypair } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import { Secret } from '../config/secret.js';
import { HorizonClient } from '../payments/horizon.js';
import {
  BridgeApi,
  BridgeApiError,
  HEADER_PAYMENT_REQUEST,
  HEADER_SESSION,
  jsonOrUndefined,
  PaymentRequestSchema,
  printable,
  type PaymentRequestInfo,
} from './bridge-api.js';
import { BudgetExhaustedError, ClientError, HttpStatusError, PaymentFailedError, StaleRequestError, UsageError } from './errors.js';
import { Payer, type LedgerApi, type PayMode, type PaymentRecord } from './payer.js';
import { httpRequest, isolationCredentials, parseHttpUrl, readBody, type Transport } from './socks.js';

export interface CrawlOptions {
  /** A response slower than this (bytes/s) over `windowMs` is "crawling". Default 48 KiB/s. */
  bytesPerSec?: number;
  /** Default 4 s. */
  windowMs?: number;
  /** After a payment, how long a running response may take to speed up before it is resumed anew. Default 3 s. */
  recoverMs?: number;
  /** First back-off after a probe that found nothing to pay (doubles up to 60 s). Default 5 s. */
  probeBackoffMs?: number;
}

export interface FetchProgress {
  /** Bytes in the output file so far. */
  bytes: number;
  /** The whole size, once the server said. */
  total: number | undefined;
  /** Over the last few seconds. */
  bytesPerSec: number;
  paidStroops: bigint;
  /** Downloading unpaid (throttled) after --max-spend was reached, with allowThrottled. */
  throttled: boolean;
}

export interface FetchOptions {
  url: string;
  /** The output file; written as `<output>.part`, renamed at the end. */
  output: string;
  /** tor's SocksPort. Omitted: direct connections (tests and local tools only). */
  socks?: { host: string; port: number };
  /** Random SOCKS credentials for this download, so tor gives it a circuit of its own. Default true. */
  isolate?: boolean;
  /** The payer's secret seed (S…). Needed when maxSpendStroops > 0. */
  seed?: string | Secret;
  /** The payer's Horizon: its network passphrase must match the bridge's; chain mode submits there. */
  horizonUrl?: string;
  /** Instead of horizonUrl (tests). */
  ledger?: LedgerApi;
  /** The most that may be spent in total (stroops). Default 0: never pay. */
  maxSpendStroops?: bigint;
  /** Default 'tab'. */
  mode?: PayMode;
  /** When --max-spend is reached: go on unpaid (throttled) instead of stopping with BudgetExhaustedError. */
  allowThrottled?: boolean;
  /** A session token from an earlier run (its credit is used first). */
  sessionToken?: string;
  /** Called whenever the bridge hands out a (new) session token. */
  onSessionToken?: (token: string) => void;
  /** Connect + response headers, per request. Default 60 s. */
  headersTimeoutMs?: number;
  /** No body byte for this long: the response is abandoned and resumed. Default 120 s. */
  stallTimeoutMs?: number;
  /** Attempts in a row that bring no byte before giving up. Default 6. */
  maxRetries?: number;
  /** First wait between attempts (doubles each time, up to 30 s). Default 1000 ms. */
  retryBaseMs?: number;
  crawl?: CrawlOptions;
  /** Tab mode: validity of each transaction (s). Default 900. */
  tabValiditySeconds?: number;
  onProgress?: (p: FetchProgress) => void;
  /** Human-readable events (payments, resumes, probes) for --verbose. Never contains the seed. */
  onEvent?: (message: string) => void;
  signal?: AbortSignal;
}

export interface FetchResult {
  /** Bytes written to `output`. */
  bytes: number;
  /** Confirmed by the bridge (receipts), stroops. */
  paidStroops: bigint;
  /** The most the payer can be charged for what it signed and sent (what --max-spend bounds), stroops. */
  spentStroops: bigint;
  payments: PaymentRecord[];
  sessionToken: string | undefined;
  /** The bridge's session id (public), from a receipt. */
  sessionId: string | undefined;
  seconds: number;
  /** Part of the download went unpaid, throttled (allowThrottled after --max-spend was reached). */
  throttled: boolean;
  output: string;
  /** The URL finally fetched (after redirects). */
  url: string;
}

/** Downloads `url` to `output`, paying the bridge as needed within `maxSpendStroops`. */
export async function fetchWithPayment(opts: FetchOptions): Promise<FetchResult> {
  return new Download(opts).run();
}

const TICK_MS = 250;
const PROGRESS_MS = 500;
const MAX_REDIRECTS = 5;
/** Body bytes waiting for the disk: pause the response above HIGH, resume below LOW. */
const QUEUE_HIGH = 4 * 1024 * 1024;
const QUEUE_LOW = 1024 * 1024;
/** Waits after a 402 that the client will not pay yet (see the safety rules above): 1, 2, 4, 8, 16 s. */
const SUSPICIOUS_WAITS = 5;

const TOKEN = /^[A-Za-z0-9._~+/=-]{8,512}$/;

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `bytes 100-199/1000` → {start: 100, end: 199, total: 1000}; `*` total → undefined. */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = v === undefined ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** The If-Range validator: a strong ETag, else Last-Modified (weak ETags are not allowed in If-Range). */
export function validatorOf(h: IncomingHttpHeaders): string | undefined {
  const etag = header(h, 'etag');
  if (etag && !etag.startsWith('W/')) return etag;
  return header(h, 'last-modified');
}

function errorText(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : String(err);
}

class Download {
  private readonly o: FetchOptions;
  private readonly transport: Transport;
  private readonly api: BridgeApi;
  private readonly payer: Payer | undefined;
  private readonly part: string;
  private readonly crawlBps: number;
  private readonly windowMs: number;
  private readonly recoverMs: number;
  private readonly probeBackoffMs: number;
  private readonly started = performance.now();
  private fh: FileHandle | undefined;
  private url: string;
  private sessionToken: string | undefined;
  private sessionId: string | undefined;
  /** Bytes in the file. */
  private have = 0;
  /** Body bytes received in all (monotonic, across restarts). */
  private received = 0;
  private total: number | undefined;
  private validator: string | undefined;
  private rangeable = false;
  /** Send Accept-Payment and probe; false once we go on throttled. */
  private acceptPayment: boolean;
  private throttled = false;
  private paying: Promise<unknown> | undefined;
  private lastPaymentAt = Number.NEGATIVE_INFINITY;
  /** "Payment request pending" answers in a row (bounded: a bridge that never makes one is an error). */
  private pendingAnswers = 0;
  private receivedAtLastPayment = 0;
  private lastCredit: number | undefined;
  private failures = 0;
  private fatal: Error | undefined;
  private lastProgress = 0;
  private rateSamples: Array<[number, number]> = [];

  constructor(o: FetchOptions) {
    this.o = o;
    try {
      parseHttpUrl(o.url);
    } catch (err) {
      throw new UsageError(`the URL: ${errorText(err)}`);
    }
    this.url = o.url;
    this.part = `${o.output}.part`;
    this.sessionToken = o.sessionToken;
    const socks = o.socks ? { ...o.socks, ...(o.isolate === false ? {} : isolationCredentials()) } : undefined;
    this.transport = socks ? { socks } : { direct: true };
    this.crawlBps = o.crawl?.bytesPerSec ?? 48 * 1024;
    this.windowMs = o.crawl?.windowMs ?? 4000;
    this.recoverMs = o.crawl?.recoverMs ?? 3000;
    this.probeBackoffMs = o.crawl?.probeBackoffMs ?? 5000;
    this.api = new BridgeApi({
      transport: this.transport,
      sessionToken: () => this.sessionToken,
      onHeaders: (h) => this.capture(h as IncomingHttpHeaders),
      timeoutMs: o.headersTimeoutMs ?? 60_000,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const max = o.maxSpendStroops ?? 0n;
    if (max < 0n) throw new UsageError('the most to spend cannot be negative');
    if (max > 0n) {
      if (o.seed === undefined) throw new UsageError('a seed is needed to pay (TORPLUS_SEED)');
      let keypair: Keypair;
      try {
        keypair = Keypair.fromSecret(typeof o.seed === 'string' ? o.seed : o.seed.reveal());
      } catch {
        throw new UsageError('the seed is not a valid Stellar secret seed (S…, 56 characters)'); // the SDK's message is not echoed
      }
      const ledger = o.ledger ?? (o.horizonUrl ? new HorizonClient(o.horizonUrl, { timeoutMs: 30_000 }) : undefined);
      if (!ledger) throw new UsageError('a Horizon URL is needed to pay (--horizon)');
      this.payer = new Payer({
        mode: o.mode ?? 'tab',
        keypair,
        maxSpendStroops: max,
        ledger,
        api: this.api,
        sessionToken: () => this.sessionToken,
        ...(o.tabValiditySeconds !== undefined ? { tabValiditySeconds: o.tabValiditySeconds } : {}),
        onEvent: (m) => this.event(m),
      });
    }
    // With nothing to spend and throttling accepted there is no point in asking for 402s.
    this.acceptPayment = !(max === 0n && o.allowThrottled === true);
  }

  async run(): Promise<FetchResult> {
    // Read Horizon's network passphrase early; if Horizon is down now, the first payment tries again (and
    // fails then): a download within the free allowance does not need it.
    if (this.payer) await this.payer.init().catch((err: unknown) => this.event(`${errorText(err)}; will try again when a payment is due`));
    try {
      this.fh = await open(this.part, 'w');
    } catch (err) {
      throw new ClientError(`cannot write ${this.part}: ${errorText(err)}`);
    }
    try {
      await this.loop();
      await this.fh.close();
      this.fh = undefined;
      await rename(this.part, this.o.output);
    } catch (err) {
      await this.fh?.close().catch(() => {});
      if (err instanceof BudgetExhaustedError) {
        err.partialPath = this.part;
        err.partialBytes = this.have;
      } else {
        await rm(this.part, { force: true }).catch(() => {});
      }
      throw err;
    }
    this.progress(true);
    const payments = [...(this.payer?.payments ?? [])];
    return {
      bytes: this.have,
      paidStroops: this.payer?.paidStroops ?? 0n,
      spentStroops: this.payer?.spentStroops ?? 0n,
      payments,
      sessionToken: this.sessionToken,
      sessionId: this.sessionId,
      seconds: (performance.now() - this.started) / 1000,
      throttled: this.throttled,
      output: this.o.output,
      url: this.url,
    };
  }

  private event(message: string): void {
    this.o.onEvent?.(message);
  }

  /** Session token from any response (content, probe, 402 or API). */
  private capture(h: IncomingHttpHeaders): void {
    const token = header(h, HEADER_SESSION)?.trim();
    if (token && TOKEN.test(token) && token !== this.sessionToken) {
      this.sessionToken = token;
      this.o.onSessionToken?.(token);
      this.event('the bridge gave this visitor a session token');
    }
  }

  private request(extra: Record<string, string>): Promise<IncomingMessage> {
    const headers: Record<string, string> = { Accept: '*/*', ...extra };
    if (this.acceptPayment) headers['Accept-Payment'] = 'stellar';
    if (this.sessionToken) headers['TorPlus-Session'] = this.sessionToken;
    return httpRequest(this.url, {
      transport: this.transport,
      headers,
      timeoutMs: this.o.headersTimeoutMs ?? 60_000,
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
  }

  private async truncate(): Promise<void> {
    this.have = 0;
    this.total = undefined;
    await this.fh!.truncate(0);
  }

  private async loop(): Promise<void> {
    let redirects = 0;
    let suspicious = 0;
    for (;;) {
      this.o.signal?.throwIfAborted();
      const before = this.received;
      const from = this.have;
      const extra: Record<string, string> = {};
      if (from > 0) {
        extra.Range = `bytes=${from}-`;
        if (this.validator) extra['If-Range'] = this.validator;
      }
      const sentAt = performance.now();
      let res: IncomingMessage;
      try {
        res = await this.request(extra);
      } catch (err) {
        this.o.signal?.throwIfAborted();
        await this.retryOrFail(new ClientError(errorText(err), undefined, { cause: err }));
        continue;
      }
      this.capture(res.headers);
      const status = res.statusCode ?? 0;

      if (status === 402) {
        if (!this.acceptPayment) {
          res.resume();
          throw new HttpStatusError(402, this.url);
        }
        let body: Buffer;
        try {
          body = await readBody(res, 64 * 1024, this.o.headersTimeoutMs ?? 60_000);
        } catch (err) {
          await this.retryOrFail(new ClientError(`reading the payment request: ${errorText(err)}`));
          continue;
        }
        try {
          const outcome = await this.onPaymentDemand(body, res.headers, sentAt);
          if (outcome === 'wait') {
            if (++suspicious > SUSPICIOUS_WAITS) {
              throw new PaymentFailedError(
                'the bridge keeps asking for payment although the last payment\'s credit has not been used; not paying again',
              );
            }
            const ms = (this.o.retryBaseMs ?? 1000) * 2 ** (suspicious - 1);
            this.event(`the bridge asks for payment again right after a payment; asking again in ${(ms / 1000).toFixed(1)} s`);
            await sleep(ms, undefined, this.o.signal ? { signal: this.o.signal } : undefined);
          } else if (outcome === 'paid') suspicious = 0;
        } catch (err) {
          if (err instanceof StaleRequestError) {
            this.event(`${err.message}; asking again`);
            await this.retryOrFail(new ClientError(err.message));
            continue;
          }
          if (err instanceof BudgetExhaustedError && this.o.allowThrottled) {
            this.goThrottled(err);
            continue;
          }
          throw err;
        }
        continue;
      }

      if ([301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        const location = header(res.headers, 'location');
        if (!location || ++redirects > MAX_REDIRECTS) throw new HttpStatusError(status, this.url);
        const next = new URL(location, this.url).toString();
        try {
          parseHttpUrl(next);
        } catch (err) {
          throw new ClientError(`redirected to ${printable(next)}: ${errorText(err)}`);
        }
        this.event(`redirected to ${printable(next)}`);
        this.url = next;
        continue;
      }

      let complete: boolean;
      if (status === 200) {
        if (from > 0) {
          this.event('the server sent the whole file instead of the range (it ignores Range, or the file changed): starting over');
          await this.truncate();
        }
        const len = header(res.headers, 'content-length');
        this.total = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
        this.validator = validatorOf(res.headers);
        this.rangeable = /\bbytes\b/i.test(header(res.headers, 'accept-ranges') ?? '');
        complete = await this.streamBody(res, 0);
      } else if (status === 206) {
        const cr = parseContentRange(header(res.headers, 'content-range'));
        if (!cr || cr.start > this.have) {
          res.destroy();
          this.event('the server answered an unusable range: starting over');
          await this.truncate();
          this.validator = undefined;
          await this.retryOrFail(new ClientError('unusable Content-Range'));
          continue;
        }
        if (cr.total !== undefined) this.total = cr.total;
        this.rangeable = true;
        if (from > 0) this.event(`resumed at byte ${from}`);
        complete = await this.streamBody(res, this.have - cr.start);
      } else if (status === 416) {
        res.resume();
        const cr = /^bytes\s+\*\/(\d+)$/i.exec(header(res.headers, 'content-range') ?? '');
        const total = cr ? Number(cr[1]) : this.total;
        if (total !== undefined && this.have === total) return;
        this.event('the server refused the range: starting over');
        await this.truncate();
        this.validator = undefined;
        await this.retryOrFail(new ClientError('HTTP 416 (range not satisfiable)'));
        continue;
      } else if (status === 429 || status === 502 || status === 503 || status === 504) {
        res.resume();
        const after = Number(header(res.headers, 'retry-after'));
        await this.retryOrFail(new HttpStatusError(status, this.url), Number.isFinite(after) && after > 0 ? Math.min(after, 60) * 1000 : undefined);
        continue;
      } else {
        res.resume();
        throw new HttpStatusError(status, this.url);
      }

      if (complete) return;
      if (this.received > before) this.failures = 0;
      else await this.retryOrFail(new ClientError('the response ended without a byte'));
    }
  }

  private goThrottled(err: BudgetExhaustedError): void {
    this.acceptPayment = false;
    this.throttled = true;
    this.event(`${err.message}; going on unpaid (throttled)`);
  }

  /** Counts a failed attempt; waits (1, 2, 4… 30 s) or, past maxRetries, throws `err`. */
  private async retryOrFail(err: Error, waitMs?: number): Promise<void> {
    this.failures++;
    if (this.failures > (this.o.maxRetries ?? 6)) throw err;
    const ms = waitMs ?? Math.min((this.o.retryBaseMs ?? 1000) * 2 ** (this.failures - 1), 30_000);
    this.event(`${err.message}; retrying in ${(ms / 1000).toFixed(1)} s`);
    await sleep(ms, undefined, this.o.signal ? { signal: this.o.signal } : undefined);
  }

  /**
   * The bridge asks for payment (a 402 to a request sent at `sentAt`). 'paid': a payment was made; 'stale':
   * a payment completed meanwhile (ask again); 'wait': the last payment's credit is not used yet (not paying
   * again now). Throws BudgetExhaustedError, PaymentFailedError, StaleRequestError.
   */
  private async onPaymentDemand(body: Buffer, headers: IncomingHttpHeaders, sentAt: number): Promise<'paid' | 'stale' | 'wait'> {
    while (this.paying) await this.paying.catch(() => {});
    if (this.lastPaymentAt > sentAt) return 'stale';
    const requestUrl = header(headers, HEADER_PAYMENT_REQUEST)?.trim();
    let request: PaymentRequestInfo | undefined;
    const parsed = PaymentRequestSchema.safeParse(jsonOrUndefined(body));
    if (parsed.success) request = parsed.data;
    if (!requestUrl) {
      // The bridge is still making the request (or, with several bridges, looking the session's credit up): ask again.
      const pending = (jsonOrUndefined(body) as { error?: unknown } | undefined)?.error === 'payment_request_pending';
      if (pending && this.pendingAnswers++ < 10) {
        const after = Math.min(5, Math.max(1, Number(header(headers, 'retry-after')) || 1));
        await new Promise((r) => setTimeout(r, after * 1000));
        return 'stale';
      }
      throw new PaymentFailedError(`${this.url}: HTTP 402 without a TorPlus-Payment-Request header (not a TorPlus bridge?)`);
    }
    this.pendingAnswers = 0;
    let announced: string;
    try {
      announced = parseHttpUrl(requestUrl).host;
    } catch {
      throw new PaymentFailedError('the TorPlus-Payment-Request header is not an http:// URL');
    }
    // Payments go only to the host being downloaded from (its API port may differ): a header that names
    // another host (passed through from the site behind the bridge, say) is not followed.
    if (announced.toLowerCase() !== parseHttpUrl(this.url).host.toLowerCase()) {
      throw new PaymentFailedError(`the payment request is on another host (${printable(announced, 80)}) than the download; not paying there`);
    }
    if (!request) {
      try {
        request = await this.api.paymentRequest(requestUrl);
      } catch (err) {
        if (err instanceof BridgeApiError) throw new PaymentFailedError(`reading the payment request: ${err.message}`);
        throw err;
      }
    }
    const payer = this.payer;
    if (!payer) throw new BudgetExhaustedError(request.amountStroops, 0n, 0n);
    if (payer.payments.length > 0) {
      const since = this.received - this.receivedAtLastPayment;
      const need = this.lastCredit === undefined ? 1 : Math.max(1, Math.floor(this.lastCredit / 2));
      if (since < need) return 'wait';
    }
    this.event(
      `payment required: request ${request.id} asks ${formatXlm(request.amountStroops)} XLM` +
        (request.creditBytes !== undefined ? ` for ${request.creditBytes} bytes` : ''),
    );
    const p = payer.pay(request, requestUrl);
    this.paying = p;
    try {
      const record = await p;
      this.lastPaymentAt = performance.now();
      this.receivedAtLastPayment = this.received;
      this.lastCredit = record.creditBytes;
      this.sessionId ??= record.receipt.sessionId;
      return 'paid';
    } finally {
      this.paying = undefined;
    }
  }

  /** GET with Range 0-0 and Accept-Payment: does the bridge want to be paid now? */
  private async probe(): Promise<'paid' | 'none'> {
    const sentAt = performance.now();
    const res = await this.request({ Range: 'bytes=0-0' });
    this.capture(res.headers);
    if (res.statusCode !== 402) {
      res.destroy();
      return 'none';
    }
    const body = await readBody(res, 64 * 1024, this.o.headersTimeoutMs ?? 60_000);
    return (await this.onPaymentDemand(body, res.headers, sentAt)) === 'paid' ? 'paid' : 'none';
  }

  private progress(force = false): void {
    const now = performance.now();
    this.rateSamples.push([now, this.received]);
    while (this.rateSamples.length > 2 && this.rateSamples[1]![0] <= now - 3000) this.rateSamples.shift();
    if (!this.o.onProgress || (!force && now - this.lastProgress < PROGRESS_MS)) return;
    this.lastProgress = now;
    const [t0, r0] = this.rateSamples[0]!;
    const rate = now > t0 ? ((this.received - r0) * 1000) / (now - t0) : 0;
    this.o.onProgress({ bytes: this.have, total: this.total, bytesPerSec: rate, paidStroops: this.payer?.paidStroops ?? 0n, throttled: this.throttled });
  }

  /**
   * Streams a 200/206 body into the file from `this.have`, skipping `skip` leading bytes (a range that starts
   * earlier than asked). True when the body is complete; false when it was cut or abandoned (resume).
   */
  private async streamBody(res: IncomingMessage, skip: number): Promise<boolean> {
    const t0 = performance.now();
    const window: Array<[number, number]> = [[t0, this.received]];
    let peak = 0;
    let lastByteAt = t0;
    let stopped: string | undefined;
    let probing: Promise<void> | undefined;
    let nextProbeAt = 0;
    let backoff = this.probeBackoffMs;
    let recover: [number, number] | undefined;
    const stop = (why: string): void => {
      if (stopped) return;
      stopped = why;
      res.destroy();
    };
    const crawling = (rate: number): boolean => rate < this.crawlBps || (peak > 0 && rate < peak / 4);

    const tick = (): void => {
      const now = performance.now();
      this.progress();
      if (now - lastByteAt > (this.o.stallTimeoutMs ?? 120_000)) return stop('no data arrived for too long');
      window.push([now, this.received]);
      while (window.length > 2 && window[1]![0] <= now - this.windowMs) window.shift();
      const [w0, r0] = window[0]!;
      const full = now - w0 >= this.windowMs * 0.9;
      const rate = full ? ((this.received - r0) * 1000) / (now - w0) : Number.POSITIVE_INFINITY;
      if (full && !recover && !probing) peak = Math.max(peak, rate);

      if (recover && now - recover[0] >= this.recoverMs) {
        const since = ((this.received - recover[1]) * 1000) / (now - recover[0]);
        recover = undefined;
        if (crawling(since)) {
          if (this.rangeable) return stop(`still slow after the payment (${Math.round(since / 1024)} KiB/s): resuming on a new request`);
          this.event('still slow after the payment, but the server does not announce ranges: staying on this response');
        }
      }
      if (!this.acceptPayment || probing || recover || this.paying || now < nextProbeAt || !full || !crawling(rate)) return;
      this.event(`the response is crawling (${Math.round(rate / 1024)} KiB/s): asking whether payment is due`);
      probing = this.probe()
        .then((r) => {
          if (r === 'paid') {
            recover = [performance.now(), this.received];
            backoff = this.probeBackoffMs;
            return;
          }
          this.event(`no payment due; the link is slow (next check in ${backoff / 1000} s)`);
          nextProbeAt = performance.now() + backoff;
          backoff = Math.min(backoff * 2, 60_000);
        })
        .catch((err: unknown) => {
          if (err instanceof BudgetExhaustedError && this.o.allowThrottled) this.goThrottled(err);
          else if (err instanceof BudgetExhaustedError || err instanceof PaymentFailedError) {
            this.fatal = err;
            stop(err.message);
          } else {
            this.event(`checking for payment failed: ${errorText(err)}`);
            nextProbeAt = performance.now() + backoff;
            backoff = Math.min(backoff * 2, 60_000);
          }
        })
        .finally(() => {
          probing = undefined;
        });
    };
    const timer = setInterval(tick, TICK_MS);
    // Flowing mode into a write queue, not `for await`: when a response is cut, an async iterator throws away
    // what the stream had buffered, and those bytes were counted (and maybe paid for) by the bridge.
    const queue: Buffer[] = [];
    let queued = 0;
    let failure: unknown;
    let pumping: Promise<void> | undefined;
    const pump = (): void => {
      pumping ??= (async () => {
        try {
          while (queue.length > 0) {
            const buf = queue.shift()!;
            queued -= buf.length;
            await this.fh!.write(buf, 0, buf.length, this.have);
            this.have += buf.length;
            if (queued <= QUEUE_LOW && res.isPaused() && !res.destroyed) res.resume();
          }
        } catch (err) {
          failure = new ClientError(`writing ${this.part}: ${errorText(err)}`);
          res.destroy();
        }
      })().finally(() => {
        pumping = undefined;
      });
    };
    const ended = new Promise<void>((resolve) => {
      res.once('end', resolve);
      res.once('close', resolve);
      res.once('error', (err) => {
        failure ??= err;
        resolve();
      });
    });
    res.on('data', (chunk: Buffer) => {
      let buf = chunk;
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
        if (buf.length === 0) return;
      }
      if (this.total !== undefined && this.have + queued + buf.length > this.total) {
        failure ??= new ClientError(`the server sent more than the ${this.total} bytes it announced`);
        res.destroy();
        return;
      }
      queue.push(buf);
      queued += buf.length;
      this.received += buf.length;
      lastByteAt = performance.now();
      if (queued > QUEUE_HIGH) res.pause();
      pump();
    });
    try {
      await ended;
      while (pumping) await pumping;
    } finally {
      clearInterval(timer);
      await probing;
    }
    if (this.fatal) throw this.fatal;
    this.o.signal?.throwIfAborted();
    if (failure instanceof ClientError) throw failure;
    if (stopped) {
      this.event(`${stopped} (at byte ${this.have})`);
      return false;
    }
    if (failure !== undefined || !res.complete) {
      this.event(`the response was cut at byte ${this.have}${failure !== undefined ? `: ${errorText(failure)}` : ''}`);
      return false;
    }
    if (this.total !== undefined && this.have < this.total) {
      this.event(`the response ended at byte ${this.have} of ${this.total}`);
      return false;
    }
    return true;
  }
}
