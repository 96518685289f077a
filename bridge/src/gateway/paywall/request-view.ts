// What the pay page shows of a payment request, read from the request's JSON (the same JSON the API
// and the 402 for clients carry, and what the primary sends the proxy workers), and what the bridge
// saw of payments for it. Erasable TypeScript only: the proxy workers load this as is.

export interface RequestView {
  id: string;
  /** XLM as a decimal string, e.g. "0.1000000". */
  amount: string;
  destination: string;
  /** MEMO_HASH as SEP-7 spells it (base64), and the same 32 bytes in hexadecimal. */
  memo: string;
  memoHex: string;
  /** The SEP-7 `web+stellar:pay?…` URI. */
  uri: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  creditBytes: number;
}

/** A payment the bridge saw for a request and did not credit, as the page explains it. */
export type PayNote =
  | { kind: 'short'; received: string; asked: string }
  | { kind: 'asset'; received: string; asset: string }
  | { kind: 'expired'; received: string }
  | { kind: 'memo'; received: string; memo: string };

const str = (v: unknown, re: RegExp): string | undefined => (typeof v === 'string' && re.test(v) ? v : undefined);

/** The view of a request's JSON, or undefined when it lacks what the page needs. */
export function requestViewOf(json: unknown): RequestView | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const j = json as Record<string, unknown>;
  const id = str(j.id, /^[A-Za-z0-9_-]{1,80}$/);
  const amount = str(j.amount, /^\d{1,12}(\.\d{1,7})?$/);
  const destination = str(j.destination, /^G[A-Z2-7]{55}$/);
  const memo = str(j.memo, /^[A-Za-z0-9+/]{43}=$/);
  const memoHex = str(j.memoHex, /^[0-9a-f]{64}$/);
  const uri = str(j.uri, /^web\+stellar:pay\?[\x21-\x7e]{1,2000}$/);
  const expiresAt = typeof j.expiresAt === 'string' ? Date.parse(j.expiresAt) : NaN;
  const creditBytes = typeof j.creditBytes === 'number' && Number.isSafeInteger(j.creditBytes) ? j.creditBytes : undefined;
  if (!id || !amount || !destination || !memo || !memoHex || !uri || !Number.isFinite(expiresAt) || creditBytes === undefined) return undefined;
  return { id, amount, destination, memo, memoHex, uri, expiresAt, creditBytes };
}
