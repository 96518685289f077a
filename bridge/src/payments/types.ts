// The payments domain as the rest of the bridge sees it. The gateway's meter asks for payment
// requests and listens for "payment complete"; the API exposes the same operations to visitors.

/** Which part of the bridge served the bytes being paid for. */
export type PaidService = 'tor' | 'ipfs';

/** A visitor's paid session. The token is a bearer secret the visitor keeps (header X-TorPlus-Session). */
export interface Session {
  id: string;
  /** The metering key of the visitor that opened it, e.g. "circuit:74". */
  visitorKey: string;
  createdAt: number;
}

export interface PaymentRequest {
  id: string;
  service: PaidService;
  sessionId: string;
  /** Stroops. */
  amount: bigint;
  asset: 'native';
  /** The bridge's Stellar account (G…). */
  destination: string;
  /** 32 bytes; the payment's MEMO_HASH must equal it. Hex. */
  memoHash: string;
  /** Bytes of credit the payment buys. */
  creditBytes: number;
  createdAt: number;
  expiresAt: number;
  status: 'open' | 'paid' | 'expired';
}

export interface Receipt {
  requestId: string;
  sessionId: string;
  /** The unique key of the credited payment operation (never credited twice). */
  operationId: string;
  transactionHash: string;
  from: string;
  amount: bigint;
  creditBytes: number;
  via: 'xdr' | 'hash' | 'stream' | 'tab';
  createdAt: number;
  /** For via 'tab': the tab whose cumulative transaction this increment belongs to. */
  tabId?: string;
}

/** Emitted once per credited payment: the meter lifts the throttle at once. */
export interface PaymentComplete {
  receipt: Receipt;
  request: PaymentRequest;
  visitorKey: string;
}

/** What a visitor's session holds (GET /session). */
export interface SessionState {
  sessionId: string;
  visitorKey: string;
  creditBytes: number;
  usedBytes: number;
  /** creditBytes − usedBytes, never below 0. */
  remainingBytes: number;
  receipts: Receipt[];
}

/** The publisher's takings (admin API). All amounts in stroops. */
export interface Earnings {
  receipts: number;
  /** Everything credited to visitors, tab increments included. */
  creditedStroops: bigint;
  /** Confirmed on the ledger: verified payments plus settled tabs. */
  onChainStroops: bigint;
  /** Credited from tabs not settled yet. */
  unsettledTabStroops: bigint;
  /** Credited from tabs whose settlement failed (a loss). */
  failedTabStroops: bigint;
  byService: Record<PaidService, bigint>;
}

/**
 * A payment the bridge saw for a request and did not credit, kept so the pay page can say what it saw
 * ("received 0.05 XLM, 0.1 XLM asked"). Amounts are decimal strings as Horizon writes them.
 */
export type PaymentNote =
  | { kind: 'short'; received: string; asked: string }
  | { kind: 'asset'; received: string; asset: string }
  | { kind: 'expired'; received: string }
  | { kind: 'memo'; received: string; memo: string };
