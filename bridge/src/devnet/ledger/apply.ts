// Applying a validated transaction's operations. Called inside the submission's SQLite transaction;
// the operations run in a nested savepoint that is rolled back when any of them fails, while the fee
// and the sequence number stay consumed (stellar-core's tx_failed).
import { fromStroops, minBalance } from './amount.js';
import { OP_TYPE_I, opResult, type OpResult } from './codes.js';
import type { ParsedOp } from './envelope.js';
import type { Account } from './store.js';
import { available, type Ctx } from './validate.js';

/** How an operation appears on Horizon, whatever its outcome. */
export interface OpRecord {
  type: string;
  typeI: number;
  details: Record<string, string>;
  isPayment: boolean;
  participants: string[];
}

export function describeOp(op: ParsedOp): OpRecord {
  switch (op.type) {
    case 'payment':
      return {
        type: 'payment',
        typeI: OP_TYPE_I.payment,
        details: { asset_type: 'native', from: op.source, to: op.destination, amount: fromStroops(op.amount) },
        isPayment: true,
        participants: [op.source, op.destination],
      };
    case 'createAccount':
      return {
        type: 'create_account',
        typeI: OP_TYPE_I.createAccount,
        details: { starting_balance: fromStroops(op.startingBalance), funder: op.source, account: op.destination },
        isPayment: true,
        participants: [op.source, op.destination],
      };
    case 'bumpSequence':
      return {
        type: 'bump_sequence',
        typeI: OP_TYPE_I.bumpSequence,
        details: { bump_to: op.bumpTo.toString() },
        isPayment: false,
        participants: [op.source],
      };
    default:
      // Never applied: unsupported operations are rejected during validation.
      return { type: op.sdkType, typeI: -1, details: {}, isPayment: false, participants: [op.source] };
  }
}

/** Marks an account as modified in this ledger. */
export function touched(a: Account, ctx: Ctx): Account {
  return { ...a, lastModifiedLedger: ctx.ledgerSeq, lastModifiedTime: ctx.closeTime };
}

/**
 * A new account as Stellar creates it (no subentries, master key weight 1, zero thresholds and flags), last
 * modified in ledger `modified.ledger` closed at `modified.time`.
 */
export function newAccount(id: string, balance: bigint, seq: bigint, modified: { ledger: number; time: number }): Account {
  return {
    id,
    balance,
    seq,
    seqLedger: 0,
    seqTime: 0,
    subentries: 0,
    masterWeight: 1,
    thresholds: { low: 0, med: 0, high: 0 },
    flags: 0,
    lastModifiedLedger: modified.ledger,
    lastModifiedTime: modified.time,
  };
}

function applyPayment(op: Extract<ParsedOp, { type: 'payment' }>, ctx: Ctx): OpResult {
  const { store } = ctx;
  const src = store.getAccount(op.source);
  if (!src) return opResult.noSourceAccount();
  // A native payment to oneself succeeds and changes nothing (as in core).
  if (op.destination === op.source) return opResult.payment(0);
  const dst = store.getAccount(op.destination);
  if (!dst) return opResult.payment(-5);
  if (available(src) < op.amount) return opResult.payment(-2);
  store.putAccount(touched({ ...src, balance: src.balance - op.amount }, ctx));
  store.putAccount(touched({ ...dst, balance: dst.balance + op.amount }, ctx));
  return opResult.payment(0);
}

function applyCreateAccount(op: Extract<ParsedOp, { type: 'createAccount' }>, ctx: Ctx): OpResult {
  const { store } = ctx;
  if (store.getAccount(op.destination)) return opResult.createAccount(-4);
  if (op.startingBalance < minBalance(0)) return opResult.createAccount(-3);
  const src = store.getAccount(op.source);
  if (!src) return opResult.noSourceAccount();
  if (available(src) < op.startingBalance) return opResult.createAccount(-2);
  store.putAccount(touched({ ...src, balance: src.balance - op.startingBalance }, ctx));
  // A new account's sequence number is the ledger's sequence << 32, as on Stellar.
  const seq = BigInt(ctx.ledgerSeq) << 32n;
  store.putAccount(newAccount(op.destination, op.startingBalance, seq, { ledger: ctx.ledgerSeq, time: ctx.closeTime }));
  return opResult.createAccount(0);
}

function applyBumpSequence(op: Extract<ParsedOp, { type: 'bumpSequence' }>, ctx: Ctx): OpResult {
  const src = ctx.store.getAccount(op.source);
  if (!src) return opResult.noSourceAccount();
  if (op.bumpTo > src.seq) {
    ctx.store.putAccount(touched({ ...src, seq: op.bumpTo, seqLedger: ctx.ledgerSeq, seqTime: ctx.closeTime }, ctx));
  }
  return opResult.bumpSequence(0);
}

function applyOp(op: ParsedOp, ctx: Ctx): OpResult {
  switch (op.type) {
    case 'payment':
      return applyPayment(op, ctx);
    case 'createAccount':
      return applyCreateAccount(op, ctx);
    case 'bumpSequence':
      return applyBumpSequence(op, ctx);
    default:
      return opResult.notSupported();
  }
}

const isSuccess = (r: OpResult) => r.code === 'op_success';
class RollBack extends Error {}

/**
 * Applies every operation (all of them run, so each reports its code, as in core) in a savepoint,
 * rolled back unless all succeeded.
 */
export function applyOps(ops: ParsedOp[], ctx: Ctx): { success: boolean; results: OpResult[] } {
  let results: OpResult[] = [];
  try {
    ctx.store.atomically(() => {
      results = ops.map((op) => applyOp(op, ctx));
      if (!results.every(isSuccess)) throw new RollBack();
    });
  } catch (e) {
    if (!(e instanceof RollBack)) throw e;
  }
  return { success: results.every(isSuccess), results };
}
