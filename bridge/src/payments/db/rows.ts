// The payments tables' rows as the domain's objects, for every backend (SQLite returns integers as bigint,
// PostgreSQL's driver returns int8 as text: both read the same here).
import type { Earnings, PaidService, PaymentRequest, Receipt } from '../types.js';

export type TabStatus = 'open' | 'settling' | 'settled' | 'failed' | 'void' | 'filled' | 'lost';

export interface TabRow {
  id: string;
  requestId: string;
  sessionId: string;
  payer: string;
  sequence: bigint;
  memoHash: string;
  limitStroops: bigint;
  amount: bigint;
  creditedBytes: number;
  latestXdr: string | undefined;
  maxTime: number | undefined;
  firstCreditAt: number | undefined;
  openedAt: number;
  status: TabStatus;
  settleXdr: string | undefined;
  settledHash: string | undefined;
  closedAt: number | undefined;
  detail: string | undefined;
}

export interface SessionRow {
  id: string;
  visitorKey: string;
  createdAt: number;
  creditBytes: number;
  usedBytes: number;
}

export interface CreditInput {
  request: PaymentRequest;
  operationId: string;
  transactionHash: string;
  from: string;
  amount: bigint;
  creditBytes: number;
  via: Receipt['via'];
  createdAt: number;
  /** A tab increment: the tab row moves to this amount in the same transaction. */
  tab?: { id: string; amount: bigint; creditedBytes: number; latestXdr: string; maxTime: number };
}

export type Row = Record<string, unknown>;
export const num = (v: unknown): number => Number(v as bigint);
export const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt(v as string | number));
export const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined => (v === null || v === undefined ? undefined : f(v));

export function toSession(r: Row): SessionRow {
  return { id: r.id as string, visitorKey: r.visitor_key as string, createdAt: num(r.created_at), creditBytes: num(r.credit_bytes), usedBytes: num(r.used_bytes) };
}

export function toRequest(r: Row): PaymentRequest & { visitorKey: string } {
  return {
    id: r.id as string,
    service: r.service as PaidService,
    sessionId: r.session_id as string,
    visitorKey: r.visitor_key as string,
    amount: big(r.amount),
    asset: 'native',
    destination: r.destination as string,
    memoHash: r.memo_hash as string,
    creditBytes: num(r.credit_bytes),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    status: r.status as PaymentRequest['status'],
  };
}

export function toReceipt(r: Row): Receipt {
  return {
    requestId: r.request_id as string,
    sessionId: r.session_id as string,
    operationId: r.operation_id as string,
    transactionHash: r.transaction_hash as string,
    from: r.from_account as string,
    amount: big(r.amount),
    creditBytes: num(r.credit_bytes),
    via: r.via as Receipt['via'],
    createdAt: num(r.created_at),
    ...(r.tab_id ? { tabId: r.tab_id as string } : {}),
  };
}

export function toTab(r: Row): TabRow {
  return {
    id: r.id as string,
    requestId: r.request_id as string,
    sessionId: r.session_id as string,
    payer: r.payer as string,
    sequence: big(r.sequence),
    memoHash: r.memo_hash as string,
    limitStroops: big(r.limit_stroops),
    amount: big(r.amount),
    creditedBytes: num(r.credited_bytes),
    latestXdr: opt(r.latest_xdr, String),
    maxTime: opt(r.max_time, num),
    firstCreditAt: opt(r.first_credit_at, num),
    openedAt: num(r.opened_at),
    status: r.status as TabStatus,
    settleXdr: opt(r.settle_xdr, String),
    settledHash: opt(r.settled_hash, String),
    closedAt: opt(r.closed_at, num),
    detail: opt(r.detail, String),
  };
}

/**
 * The publisher's takings from two aggregates: receipts grouped by way and service (`via`, `service`,
 * `n`, `total`) and tabs grouped by status (`status`, `total`).
 */
export function earningsOf(byVia: Row[], tabSums: Row[]): Earnings {
  const e: Earnings = {
    receipts: 0, creditedStroops: 0n, onChainStroops: 0n, unsettledTabStroops: 0n, failedTabStroops: 0n,
    byService: { tor: 0n, ipfs: 0n },
  };
  for (const r of byVia) {
    const total = big(r.total);
    e.receipts += num(r.n);
    e.creditedStroops += total;
    if (r.via !== 'tab') e.onChainStroops += total;
    const service = r.service as PaidService;
    e.byService[service] = (e.byService[service] ?? 0n) + total;
  }
  for (const r of tabSums) {
    const total = big(r.total);
    if (r.status === 'settled') e.onChainStroops += total;
    else if (r.status === 'open' || r.status === 'settling') e.unsettledTabStroops += total;
    else e.failedTabStroops += total;
  }
  return e;
}
