// Validation of a transaction against the current state, in stellar-core's order. A transaction that
// fails here is rejected: nothing is charged or recorded, and Horizon answers 400 with the code.
// Failures of operations found here (op_bad_auth, op_no_source_account, op_not_supported,
// op_malformed) are rejections too (tx_failed), as core's checkValid does.
import { StrKey } from '@stellar/stellar-sdk';
import { BASE_FEE, minBalance } from './amount.js';
import { opResult, type OpResult, type TxOutcome } from './codes.js';
import type { ParsedOp, ParsedTx } from './envelope.js';
import type { Account, Store } from './store.js';
import { SignatureChecker, signersOf } from './verify.js';

export interface Ctx {
  store: Store;
  /** The ledger this transaction would close. */
  ledgerSeq: number;
  /** Its close time, unix seconds. */
  closeTime: number;
}

export type Failure = Exclude<TxOutcome, { code: 'tx_success' }>;

/** What an account can spend: balance above its reserve (no liabilities on this ledger). */
export function available(a: Account): bigint {
  return a.balance - minBalance(a.subentries);
}

/** The op's success result, used for operations that passed validation when another one did not. */
function okResult(op: ParsedOp): OpResult {
  if (op.type === 'payment') return opResult.payment(0);
  if (op.type === 'createAccount') return opResult.createAccount(0);
  if (op.type === 'bumpSequence') return opResult.bumpSequence(0);
  return opResult.notSupported();
}

function checkBounds(tx: ParsedTx, ctx: Ctx): Failure | undefined {
  const now = BigInt(ctx.closeTime);
  if (tx.timeBounds) {
    if (tx.timeBounds.minTime > now) return { code: 'tx_too_early' };
    if (tx.timeBounds.maxTime !== 0n && tx.timeBounds.maxTime < now) return { code: 'tx_too_late' };
  }
  if (tx.ledgerBounds) {
    if (tx.ledgerBounds.minLedger > ctx.ledgerSeq) return { code: 'tx_too_early' };
    if (tx.ledgerBounds.maxLedger !== 0 && tx.ledgerBounds.maxLedger <= ctx.ledgerSeq) return { code: 'tx_too_late' };
  }
  return undefined;
}

function checkSeq(tx: ParsedTx, source: Account, ctx: Ctx): Failure | undefined {
  if (tx.minSeq !== undefined) {
    if (source.seq < tx.minSeq || source.seq >= tx.seq) return { code: 'tx_bad_seq' };
  } else if (tx.seq !== source.seq + 1n) {
    return { code: 'tx_bad_seq' };
  }
  if (tx.minSeqAge !== undefined && BigInt(ctx.closeTime - source.seqTime) < tx.minSeqAge)
    return { code: 'tx_bad_min_seq_age_or_gap' };
  if (tx.minSeqLedgerGap !== undefined && ctx.ledgerSeq - source.seqLedger < tx.minSeqLedgerGap)
    return { code: 'tx_bad_min_seq_age_or_gap' };
  return undefined;
}

/** CAP-21 extra signers: ed25519 keys must have signed; other kinds are not supported here. */
function checkExtraSigners(tx: ParsedTx, checker: SignatureChecker): Failure | undefined {
  for (const s of tx.extraSigners) {
    const wire = s.toXdrObject();
    if (wire.type !== 0) return { code: 'tx_not_supported' };
    const key = StrKey.encodeEd25519PublicKey(wire.ed25519);
    if (!checker.check([{ key, weight: 1 }], 1)) return { code: 'tx_bad_auth' };
  }
  return undefined;
}

/** Threshold an operation needs from its source account. */
function thresholdFor(op: ParsedOp, a: Account): number {
  return op.type === 'bumpSequence' ? a.thresholds.low : a.thresholds.med;
}

/** Stateless checks of one operation (core's doCheckValid). */
function malformed(op: ParsedOp): OpResult | undefined {
  switch (op.type) {
    case 'payment':
      if (!op.native) return opResult.notSupported();
      return op.amount <= 0n ? opResult.payment(-1) : undefined;
    case 'createAccount':
      return op.startingBalance < 0n || op.destination === op.source ? opResult.createAccount(-1) : undefined;
    case 'bumpSequence':
      return op.bumpTo < 0n ? opResult.bumpSequence(-1) : undefined;
    default:
      return opResult.notSupported();
  }
}

function checkOp(op: ParsedOp, ctx: Ctx, checker: SignatureChecker): OpResult | undefined {
  if (op.type === 'unsupported') return opResult.notSupported();
  const source = ctx.store.getAccount(op.source);
  if (!source) return opResult.noSourceAccount();
  if (!checker.check(signersOf(source), thresholdFor(op, source))) return opResult.badAuth();
  return malformed(op);
}

function checkOps(tx: ParsedTx, ctx: Ctx, checker: SignatureChecker): Failure | undefined {
  const failures = tx.ops.map((op) => checkOp(op, ctx, checker));
  if (failures.every((f) => f === undefined)) return undefined;
  return { code: 'tx_failed', ops: tx.ops.map((op, i) => failures[i] ?? okResult(op)) };
}

/**
 * Validates a transaction (the inner one of a fee bump when `feeBumped`). Returns the failure, or the
 * signature checker (so the caller can still refuse unused signatures) and the source account.
 */
export function validateTx(
  tx: ParsedTx,
  ctx: Ctx,
  feeBumped: boolean,
): { failure: Failure } | { failure?: undefined; source: Account } {
  const fail = (failure: Failure) => ({ failure });
  if (tx.ops.length === 0) return fail({ code: 'tx_missing_operation' });
  if (tx.ops.length > 100) return fail({ code: 'tx_malformed' });
  const bounds = checkBounds(tx, ctx);
  if (bounds) return fail(bounds);
  if (!feeBumped && tx.fee < BASE_FEE * BigInt(tx.ops.length)) return fail({ code: 'tx_insufficient_fee' });
  const source = ctx.store.getAccount(tx.source);
  if (!source) return fail({ code: 'tx_no_source_account' });
  const seq = checkSeq(tx, source, ctx);
  if (seq) return fail(seq);
  const checker = new SignatureChecker(tx.hash, tx.signatures);
  if (!checker.check(signersOf(source), source.thresholds.low)) return fail({ code: 'tx_bad_auth' });
  const extra = checkExtraSigners(tx, checker);
  if (extra) return fail(extra);
  if (!feeBumped && available(source) < tx.fee) return fail({ code: 'tx_insufficient_balance' });
  const ops = checkOps(tx, ctx, checker);
  if (ops) return fail(ops);
  if (!checker.allUsed()) return fail({ code: 'tx_bad_auth_extra' });
  return { source };
}

/** The fee-bump wrapper's own checks (the inner transaction is validated separately). */
export function validateFeeBump(
  fb: { hash: Buffer; feeSource: string; fee: bigint; signatures: ParsedTx['signatures'] },
  inner: ParsedTx,
  ctx: Ctx,
): { failure: Failure; checker?: undefined } | { failure?: undefined; checker: SignatureChecker } {
  const ops = BigInt(inner.ops.length);
  // The outer fee must cover (ops + 1) base fees, and its rate must be at least the inner one's.
  if (fb.fee < BASE_FEE * (ops + 1n) || fb.fee * ops < inner.fee * (ops + 1n)) return { failure: { code: 'tx_insufficient_fee' } };
  const feeSource = ctx.store.getAccount(fb.feeSource);
  if (!feeSource) return { failure: { code: 'tx_no_source_account' } };
  const checker = new SignatureChecker(fb.hash, fb.signatures);
  if (!checker.check(signersOf(feeSource), feeSource.thresholds.low)) return { failure: { code: 'tx_bad_auth' } };
  if (available(feeSource) < fb.fee) return { failure: { code: 'tx_insufficient_balance' } };
  return { checker };
}
