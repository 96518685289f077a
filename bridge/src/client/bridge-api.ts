// Typed calls to the bridge's payment API (on the onion, e.g. http://<onion>:8000/v1/…), every answer
// validated with zod before anything is built or signed from it.
//
// Shapes follow the bridge's own code: payments/payment-requests.ts `requestJson` (payment requests),
// payments/tabs.ts `TabInfo` (tabs), payments/types.ts `Receipt`, payments/errors.ts `PaymentError.toJSON`
// (`{error, message}`). Keys are accepted in camelCase or snake_case (`memo_type`, `network_passphrase`…),
// and the memo as hex or base64, so small spelling differences of the API do not break the client.
import { StrKey } from '@stellar/stellar-sdk';
import { z } from 'zod';
import { parseXlm } from '../config/amount.js';
import { httpRequest, readBody, type Transport } from './socks.js';

/** Headers of the bridge's contract. */
export const HEADER_PAYMENT_REQUEST = 'torplus-payment-request';
export const HEADER_SESSION = 'torplus-session';
export const HEADER_ACCEPT_PAYMENT = 'Accept-Payment';

/** `memo_type` → `memoType` (top-level keys only). */
export function camelKeys(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const camel = k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    if (!(camel in out) || camel === k) out[camel] = val;
  }
  return out;
}

const account = z.string().refine((s) => StrKey.isValidEd25519PublicKey(s), { error: 'expected a Stellar account (G…)' });
const digits = z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));
const HEX32 = /^[0-9a-fA-F]{64}$/;

/** The 32-byte memo as lowercase hex, from whichever form the bridge sent. */
function memoHexOf(o: { memoHex?: string | undefined; memo?: string | undefined; memoBase64?: string | undefined }): string | undefined {
  if (o.memoHex !== undefined) return HEX32.test(o.memoHex) ? o.memoHex.toLowerCase() : undefined;
  if (o.memo !== undefined && HEX32.test(o.memo)) return o.memo.toLowerCase();
  const b64 = o.memoBase64 ?? o.memo;
  if (b64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const raw = Buffer.from(b64, 'base64');
  return raw.length === 32 ? raw.toString('hex') : undefined;
}

/** A payment request as the client uses it: amounts in stroops, the memo as hex. */
export interface PaymentRequestInfo {
  id: string;
  /** 'open' | 'paid' | 'expired' (undefined when the bridge does not say). */
  status: string | undefined;
  amountStroops: bigint;
  destination: string;
  memoHex: string;
  creditBytes: number | undefined;
  networkPassphrase: string;
  /** ms since the epoch, if given. */
  expiresAt: number | undefined;
  sessionId: string | undefined;
}

const paymentRequestShape = z.looseObject({
  id: z.string().min(1).max(200),
  status: z.string().optional(),
  amount: z.union([z.string(), z.number()]).optional(),
  amountStroops: digits.optional(),
  asset: z.string().optional(),
  destination: account,
  memoType: z.string().optional(),
  memo: z.string().optional(),
  memoHex: z.string().optional(),
  memoBase64: z.string().optional(),
  creditBytes: z.number().int().nonnegative().optional(),
  networkPassphrase: z.string().min(1),
  expiresAt: z.string().optional(),
  sessionId: z.string().optional(),
});

export const PaymentRequestSchema = z.preprocess(camelKeys, paymentRequestShape).transform((r, ctx): PaymentRequestInfo => {
  const fromText = r.amount === undefined ? undefined : parseXlm(String(r.amount));
  const amount = r.amountStroops ?? fromText;
  if (amount === undefined || amount <= 0n) {
    ctx.addIssue({ code: 'custom', message: 'expected a positive amount of XLM', path: ['amount'] });
    return z.NEVER;
  }
  if (r.amountStroops !== undefined && fromText !== undefined && fromText !== r.amountStroops) {
    ctx.addIssue({ code: 'custom', message: 'amount and amountStroops disagree', path: ['amount'] });
    return z.NEVER;
  }
  if (r.asset !== undefined && r.asset !== 'native') {
    ctx.addIssue({ code: 'custom', message: `only XLM (native) payments are supported, not ${r.asset}`, path: ['asset'] });
    return z.NEVER;
  }
  if (r.memoType !== undefined && !/^(memo_)?hash$/i.test(r.memoType)) {
    ctx.addIssue({ code: 'custom', message: `expected memo type MEMO_HASH, not ${r.memoType}`, path: ['memoType'] });
    return z.NEVER;
  }
  const memoHex = memoHexOf(r);
  if (memoHex === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a 32-byte memo (hex or base64)', path: ['memo'] });
    return z.NEVER;
  }
  const expires = r.expiresAt === undefined ? undefined : Date.parse(r.expiresAt);
  return {
    id: r.id,
    status: r.status,
    amountStroops: amount,
    destination: r.destination,
    memoHex,
    creditBytes: r.creditBytes,
    networkPassphrase: r.networkPassphrase,
    expiresAt: expires !== undefined && Number.isFinite(expires) ? expires : undefined,
    sessionId: r.sessionId,
  };
});

/** What the client needs of a tab (payments/tabs.ts TabInfo), amounts in stroops. */
export interface TabState {
  id: string;
  requestId: string | undefined;
  payer: string;
  /** The bridge's account: the transactions' source and the payments' destination. */
  account: string;
  /** The reserved sequence number every transaction of the tab carries. */
  sequence: bigint;
  memoHex: string;
  /** The most the cumulative amount may reach. */
  limit: bigint;
  /** The cumulative amount the bridge has accepted so far. */
  amount: bigint;
  maxFee: bigint;
  minRemainingSeconds: number;
  networkPassphrase: string;
  status: string;
}

export const TabSchema = z
  .preprocess(
    camelKeys,
    z.looseObject({
      id: z.string().min(1).max(200),
      requestId: z.string().optional(),
      payer: account,
      account,
      sequence: digits,
      memoType: z.string().optional(),
      memoHex: z.string().optional(),
      memo: z.string().optional(),
      limit: digits,
      amount: digits.default(0n),
      maxFee: digits,
      minRemainingSeconds: z.number().int().nonnegative().default(90),
      networkPassphrase: z.string().min(1),
      status: z.string().default('open'),
    }),
  )
  .transform((t, ctx): TabState => {
    const memoHex = memoHexOf(t);
    if (memoHex === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a 32-byte memo (hex or base64)', path: ['memo'] });
      return z.NEVER;
    }
    return {
      id: t.id, requestId: t.requestId, payer: t.payer, account: t.account, sequence: t.sequence, memoHex, limit: t.limit,
      amount: t.amount, maxFee: t.maxFee, minRemainingSeconds: t.minRemainingSeconds, networkPassphrase: t.networkPassphrase,
      status: t.status,
    };
  });

/** A receipt, as much as the client reads (everything optional: it is informative only). */
export interface ReceiptInfo {
  requestId?: string | undefined;
  sessionId?: string | undefined;
  transactionHash?: string | undefined;
  amountStroops?: bigint | undefined;
  creditBytes?: number | undefined;
  tabId?: string | undefined;
}

const amountOf = z
  .union([z.string(), z.number()])
  .optional()
  .transform((v) => {
    if (v === undefined) return undefined;
    const s = String(v);
    // Stroops as an integer string (bigint serialised), or XLM with a decimal point.
    return s.includes('.') ? parseXlm(s) : /^[0-9]+$/.test(s) ? BigInt(s) : undefined;
  });

export const ReceiptSchema = z
  .preprocess(
    camelKeys,
    z.looseObject({
      requestId: z.string().optional(),
      sessionId: z.string().optional(),
      transactionHash: z.string().optional(),
      amount: amountOf,
      creditBytes: z.number().optional(),
      tabId: z.string().optional(),
    }),
  )
  .transform((r): ReceiptInfo => ({
    requestId: r.requestId, sessionId: r.sessionId, transactionHash: r.transactionHash, amountStroops: r.amount,
    creditBytes: r.creditBytes, tabId: r.tabId,
  }));

/** POST /v1/tabs/:id answers `{receipt, tab}` (PaymentsService.submitTab); either may be missing. */
const TabSubmitSchema = z.preprocess(
  camelKeys,
  z.looseObject({ receipt: z.unknown().optional(), tab: z.unknown().optional() }),
);

/** POST …/payments answers the receipt, maybe wrapped as `{receipt}`. */
function receiptOf(json: unknown): ReceiptInfo {
  const inner = typeof json === 'object' && json !== null && 'receipt' in json ? (json as { receipt: unknown }).receipt : json;
  const r = ReceiptSchema.safeParse(inner);
  return r.success ? r.data : {};
}

/** The bridge answered with an error (`{error: code, message}`), or something that is not the API. */
export class BridgeApiError extends Error {
  readonly status: number;
  /** PaymentError code ('tab_closed', 'horizon_unavailable'…), or 'http_<status>' / 'bad_response'. */
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    super(message);
    this.name = 'BridgeApiError';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

const ErrorBody = z.looseObject({
  error: z.string().max(100),
  message: z.string().max(2000).optional(),
  retryAfterSeconds: z.number().optional(),
});

/** Control characters out, length capped: a message from the network is printed on a terminal. */
export function printable(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new BridgeApiError(0, 'bad_response', `${what}: the answer is not JSON`);
  }
}

/** `body` parsed as JSON, or undefined if it is not JSON (for error and 402 bodies, which may be anything). */
export function jsonOrUndefined(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Validates `json` with `schema`, or throws a BridgeApiError naming the first problem. */
export function validate<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new BridgeApiError(0, 'bad_response', `${what}: unexpected answer (${path}${issue.message})`);
}

export interface BridgeApiOptions {
  transport: Transport;
  /** Sent as TorPlus-Session on every call, when known. */
  sessionToken: () => string | undefined;
  /** Every response's headers (the session token may be renewed by any of them). */
  onHeaders?: (headers: Record<string, string | string[] | undefined>) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The bridge's payment API, reached through the same transport as the content. */
export class BridgeApi {
  private readonly o: BridgeApiOptions;

  constructor(o: BridgeApiOptions) {
    this.o = o;
  }

  /** The API's origin from a payment request's URL: `http://<onion>:8000/v1/payment-requests/<id>` → `http://<onion>:8000`. */
  static apiBase(requestUrl: string): string {
    return new URL(requestUrl).origin;
  }

  async paymentRequest(url: string): Promise<PaymentRequestInfo> {
    return validate(PaymentRequestSchema, await this.call('GET', url), 'payment request');
  }

  /** Hands the bridge a signed payment transaction; it submits it to the network and credits it. */
  async submitPaymentXdr(requestUrl: string, xdr: string): Promise<ReceiptInfo> {
    return receiptOf(await this.call('POST', `${stripSlash(requestUrl)}/payments`, { xdr }));
  }

  /** Tells the bridge about a transaction the client submitted itself. */
  async submitPaymentHash(requestUrl: string, hash: string): Promise<ReceiptInfo> {
    return receiptOf(await this.call('POST', `${stripSlash(requestUrl)}/payments`, { hash }));
  }

  /** Opens (or returns the open) tab of `payer`, by payment request id or session token. */
  async openTab(apiBase: string, ref: { requestId: string } | { session: string }, payer: string): Promise<TabState> {
    const body = 'requestId' in ref ? { request_id: ref.requestId, payer } : { session: ref.session, payer };
    return validate(TabSchema, await this.call('POST', `${apiBase}/v1/tabs`, body), 'opening a tab');
  }

  async getTab(apiBase: string, tabId: string): Promise<TabState> {
    return validate(TabSchema, await this.call('GET', `${apiBase}/v1/tabs/${encodeURIComponent(tabId)}`), 'tab');
  }

  /** Hands the bridge the tab's next cumulative transaction. */
  async submitTab(apiBase: string, tabId: string, xdr: string): Promise<{ receipt: ReceiptInfo; tab: TabState | undefined }> {
    const json = await this.call('POST', `${apiBase}/v1/tabs/${encodeURIComponent(tabId)}`, { xdr });
    const parts = validate(TabSubmitSchema, json, 'tab payment');
    const tab = parts.tab === undefined ? undefined : TabSchema.safeParse(parts.tab);
    return { receipt: receiptOf(parts.receipt ?? {}), tab: tab?.success ? tab.data : undefined };
  }

  private async call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = this.o.sessionToken();
    if (token) headers['TorPlus-Session'] = token;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    const res = await httpRequest(url, {
      transport: this.o.transport,
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      ...(this.o.timeoutMs !== undefined ? { timeoutMs: this.o.timeoutMs } : {}),
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
    this.o.onHeaders?.(res.headers);
    const text = await readBody(res, 256 * 1024, this.o.timeoutMs ?? 60_000);
    const status = res.statusCode ?? 0;
    const what = `${method} ${new URL(url).pathname}`;
    if (status >= 200 && status < 300) return parseJson(text, what);
    const err = ErrorBody.safeParse(jsonOrUndefined(text));
    if (err.success) {
      throw new BridgeApiError(status, err.data.error, printable(`${what}: ${err.data.message ?? err.data.error}`), err.data.retryAfterSeconds);
    }
    throw new BridgeApiError(status, `http_${status}`, `${what}: HTTP ${status}`);
  }
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
