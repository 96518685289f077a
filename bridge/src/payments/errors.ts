// One error type for everything a visitor (or the gateway on its behalf) can get wrong, with a stable
// machine code for the API and a sentence a human can act on. Messages never contain secrets: they are
// built from public values only (accounts, amounts, hashes).

export type PaymentErrorCode =
  | 'payments_disabled'
  | 'malformed_xdr'
  | 'wrong_network'
  | 'wrong_destination'
  | 'wrong_asset'
  | 'wrong_amount'
  | 'wrong_memo'
  | 'wrong_source'
  | 'wrong_sequence'
  | 'wrong_shape'
  | 'bad_signature'
  | 'bad_fee'
  | 'bad_time_bounds'
  | 'expired_request'
  | 'already_paid'
  | 'replay'
  | 'not_increasing'
  | 'over_limit'
  | 'unknown_request'
  | 'unknown_session'
  | 'unknown_tab'
  | 'unknown_transaction'
  | 'tab_closed'
  | 'tab_exists'
  | 'unfunded_payer'
  | 'insufficient_balance'
  | 'weak_signer'
  | 'rate_limited'
  | 'transaction_failed'
  | 'horizon_unavailable';

/** HTTP status the API should answer with, per code. */
const STATUS: Partial<Record<PaymentErrorCode, number>> = {
  payments_disabled: 503,
  unknown_request: 404,
  unknown_session: 404,
  unknown_tab: 404,
  unknown_transaction: 404,
  expired_request: 410,
  already_paid: 409,
  replay: 409,
  tab_exists: 409,
  tab_closed: 409,
  rate_limited: 429,
  horizon_unavailable: 502,
};

export class PaymentError extends Error {
  readonly code: PaymentErrorCode;
  /** For rate_limited: seconds until a retry can succeed. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: PaymentErrorCode, message: string, opts: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PaymentError';
    this.code = code;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }

  get httpStatus(): number {
    return STATUS[this.code] ?? 400;
  }

  toJSON(): { error: PaymentErrorCode; message: string; retryAfterSeconds?: number } {
    return this.retryAfterSeconds === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, retryAfterSeconds: this.retryAfterSeconds };
  }
}

export function isPaymentError(err: unknown, code?: PaymentErrorCode): err is PaymentError {
  return err instanceof PaymentError && (code === undefined || err.code === code);
}
