// Result codes: Horizon's strings (result_codes in a transaction_failed problem) and the matching
// TransactionResult XDR, built with the SDK's own XDR classes so `submitTransaction` can parse it.
import { xdr } from '@stellar/stellar-sdk';

export type TxCode =
  | 'tx_success'
  | 'tx_failed'
  | 'tx_too_early'
  | 'tx_too_late'
  | 'tx_missing_operation'
  | 'tx_bad_seq'
  | 'tx_bad_auth'
  | 'tx_insufficient_balance'
  | 'tx_no_source_account'
  | 'tx_insufficient_fee'
  | 'tx_bad_auth_extra'
  | 'tx_internal_error'
  | 'tx_not_supported'
  | 'tx_fee_bump_inner_failed'
  | 'tx_bad_min_seq_age_or_gap'
  | 'tx_malformed';

/** The codes without a body (everything but success, failed and the fee-bump pair). */
type VoidTxCode = Exclude<TxCode, 'tx_success' | 'tx_failed' | 'tx_fee_bump_inner_failed'>;

const TX_CODE_NUM: Record<VoidTxCode, xdr.TransactionResultResultWire['code']> = {
  tx_too_early: -2,
  tx_too_late: -3,
  tx_missing_operation: -4,
  tx_bad_seq: -5,
  tx_bad_auth: -6,
  tx_insufficient_balance: -7,
  tx_no_source_account: -8,
  tx_insufficient_fee: -9,
  tx_bad_auth_extra: -10,
  tx_internal_error: -11,
  tx_not_supported: -12,
  tx_bad_min_seq_age_or_gap: -15,
  tx_malformed: -16,
};

/** Horizon's `extras.result_codes`. */
export interface ResultCodes {
  transaction: TxCode;
  /** Fee-bump envelopes whose inner transaction failed. */
  inner_transaction?: TxCode;
  operations?: string[];
}

/** One operation's result: Horizon's string and the XDR wire value. */
export interface OpResult {
  code: string;
  wire: xdr.OperationResultWire;
}

export const OP_TYPE_I = { createAccount: 0, payment: 1, bumpSequence: 11 } as const;

export const opResult = {
  badAuth: (): OpResult => ({ code: 'op_bad_auth', wire: { code: -1 } }),
  noSourceAccount: (): OpResult => ({ code: 'op_no_source_account', wire: { code: -2 } }),
  notSupported: (): OpResult => ({ code: 'op_not_supported', wire: { code: -3 } }),
  payment: (code: 0 | -1 | -2 | -5): OpResult => ({
    code: { 0: 'op_success', [-1]: 'op_malformed', [-2]: 'op_underfunded', [-5]: 'op_no_destination' }[code],
    wire: { code: 0, tr: { type: 1, paymentResult: { code } } },
  }),
  createAccount: (code: 0 | -1 | -2 | -3 | -4): OpResult => ({
    code: { 0: 'op_success', [-1]: 'op_malformed', [-2]: 'op_underfunded', [-3]: 'op_low_reserve', [-4]: 'op_already_exists' }[
      code
    ],
    wire: { code: 0, tr: { type: 0, createAccountResult: { code } } },
  }),
  bumpSequence: (code: 0 | -1): OpResult => ({
    code: code === 0 ? 'op_success' : 'op_bad_seq',
    wire: { code: 0, tr: { type: 11, bumpSeqResult: { code } } },
  }),
};

/** The result body of a plain (or inner) transaction. */
export type TxOutcome =
  | { code: 'tx_success' | 'tx_failed'; ops: OpResult[] }
  | { code: VoidTxCode };

function resultWire(o: TxOutcome): xdr.TransactionResultResultWire {
  if (o.code === 'tx_success') return { code: 0, results: o.ops.map((r) => r.wire) };
  if (o.code === 'tx_failed') return { code: -1, results: o.ops.map((r) => r.wire) };
  return { code: TX_CODE_NUM[o.code] } as xdr.TransactionResultResultWire;
}

/** base64 TransactionResult for a plain transaction. */
export function resultXdr(feeCharged: bigint, o: TxOutcome): string {
  return xdr.TransactionResult.fromXdrObject({ feeCharged, result: resultWire(o), ext: { v: 0 } }).toXdr('base64');
}

/** base64 TransactionResult for a fee-bump envelope wrapping `inner` (whose feeCharged is 0, as in core). */
export function feeBumpResultXdr(feeCharged: bigint, innerHash: Buffer, inner: TxOutcome): string {
  const innerResult = { feeCharged: 0n, result: resultWire(inner), ext: { v: 0 } } as xdr.InnerTransactionResultWire;
  const pair = { transactionHash: new Uint8Array(innerHash), result: innerResult };
  const result: xdr.TransactionResultResultWire =
    inner.code === 'tx_success' ? { code: 1, innerResultPair: pair } : { code: -13, innerResultPair: pair };
  return xdr.TransactionResult.fromXdrObject({ feeCharged, result, ext: { v: 0 } }).toXdr('base64');
}

/** Horizon's result_codes for an outcome (operations only for tx_failed, as Horizon). */
export function resultCodes(o: TxOutcome, feeBump = false): ResultCodes {
  const ops = o.code === 'tx_failed' ? { operations: o.ops.map((r) => r.code) } : {};
  if (!feeBump) return { transaction: o.code, ...ops };
  return { transaction: 'tx_fee_bump_inner_failed', inner_transaction: o.code, ...ops };
}
