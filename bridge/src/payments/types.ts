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
}

/** Emitted once per credited payment: the meter lifts the throttle at once. */
export interface PaymentComplete {
  receipt: Receipt;
  request: PaymentRequest;
  visitorKey: string;
}
