// Crediting payments made on the ledger. Three ways in: a signed XDR the bridge checks offline and submits,
// the hash of a transaction the visitor submitted, and the bridge account's payment stream (a wallet that
// paid a SEP-7 URI). Every one ends in `fromLedger`, and every credit in ONE database transaction keyed on
// the payment operation, so the ways may race for one payment (on one bridge or several) and it is still
// credited once. 'complete' is reported only after a credit committed, hence exactly once per payment.
import type { Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import type { Logger } from '../log/logger.js';
import type { PaymentsDatabase } from './db/payments-database.js';
import { PaymentError, isPaymentError } from './errors.js';
import { HorizonUnavailable, SubmitRejected, type HorizonApi } from './horizon.js';
import { MIB } from './payment-requests.js';
import { noteFor } from './request-notes.js';
import type { PaidService, PaymentComplete, PaymentRequest, Receipt } from './types.js';
import { checkRequestPayable, checkTimeBounds, matchPayment, parseTransaction, requireSignatures } from './verify.js';

/** A payment that reached the ledger this long after its request expired is still credited (a slow wallet). */
export const LATE_PAYMENT_GRACE_MS = 5 * 60_000;

export interface CreditingOptions {
  db: PaymentsDatabase;
  horizon: HorizonApi;
  /** The bridge's account. */
  account: string;
  passphrase: string;
  priceOf: (service: PaidService) => bigint;
  now: () => number;
  log: Logger;
  onComplete: (e: PaymentComplete) => void;
  onVerified: (seconds: number) => void;
}

export class Crediting {
  private readonly o: CreditingOptions;
  private readonly inflight = new Set<string>();

  constructor(o: CreditingOptions) {
    this.o = o;
  }

  /** Checks a signed transaction paying `request` offline, submits it to Horizon, and credits it. */
  async submitXdr(request: PaymentRequest, xdr: unknown, signal?: AbortSignal): Promise<Receipt> {
    const { account, passphrase } = this.o;
    const now = this.o.now();
    checkRequestPayable(request, now);
    const started = performance.now();
    const parsed = parseTransaction(xdr, passphrase);
    const match = matchPayment(parsed.tx, { destination: account, amount: request.amount, memoHash: request.memoHash });
    requireSignatures(parsed, passphrase, [...new Set([parsed.tx.source, match.from])]);
    checkTimeBounds(parsed.tx, Math.floor(now / 1000), { requireMaxTime: false, minRemainingSeconds: 0 });
    this.o.onVerified((performance.now() - started) / 1000);
    // One submission per request at a time: a double click must not pay twice.
    if (this.inflight.has(request.id)) throw new PaymentError('already_paid', `a payment for request ${request.id} is being submitted`);
    this.inflight.add(request.id);
    try {
      try {
        await this.o.horizon.submit(parsed.envelope, signal);
      } catch (err) {
        if (err instanceof SubmitRejected) {
          throw new PaymentError('transaction_failed', `the network refused the transaction: ${err.txCode}${err.opCodes.length ? ` (${err.opCodes.join(', ')})` : ''}`);
        }
        throw new PaymentError('horizon_unavailable', `could not submit the transaction (${(err as Error).message}); ` +
          `if it reached the network it will be credited anyway: check the request again, or submit its hash ${parsed.hash}`);
      }
      try {
        return await this.fromLedger(parsed.hash, 'xdr', request, signal);
      } catch (err) {
        // The stream may have credited it first: that is this payment's receipt, not a replay by the visitor.
        if (isPaymentError(err, 'replay')) {
          const mine = (await this.o.db.receiptsOf(request.sessionId)).find((r) => r.transactionHash === parsed.hash);
          if (mine) return mine;
        }
        throw err;
      }
    } finally {
      this.inflight.delete(request.id);
    }
  }

  /** Credits a transaction the visitor submitted itself, looked up on Horizon by its hash. */
  async submitHash(request: PaymentRequest, hash: unknown, signal?: AbortSignal): Promise<Receipt> {
    if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) {
      throw new PaymentError('unknown_transaction', 'expected a transaction hash: 64 hexadecimal characters');
    }
    return this.fromLedger(hash.toLowerCase(), 'hash', request, signal);
  }

  /**
   * Looks a transaction up on the ledger and credits its payment to the request its memo names (or
   * `expected`, which it must then match). Throws PaymentError: unknown_transaction, transaction_failed,
   * wrong_memo, wrong_destination, wrong_amount, expired_request, replay, horizon_unavailable…
   */
  async fromLedger(hash: string, via: Receipt['via'], expected?: PaymentRequest, signal?: AbortSignal): Promise<Receipt> {
    const { db, account, passphrase } = this.o;
    const info = await horizonCall(() => this.o.horizon.transaction(hash, signal), `look up transaction ${hash}`);
    if (!info) throw new PaymentError('unknown_transaction', `the network does not know transaction ${hash} (yet?)`);
    if (!info.successful) throw new PaymentError('transaction_failed', `transaction ${hash} failed on the ledger; it paid nothing`);
    const parsed = parseTransaction(info.envelopeXdr, passphrase);
    if (parsed.hash !== info.hash.toLowerCase()) {
      throw new PaymentError('wrong_network', `transaction ${hash} does not hash to its id under "${passphrase}": Horizon is on another network`);
    }
    if (parsed.tx.source === account) {
      throw new PaymentError('wrong_source', `transaction ${hash} is the bridge's own (a tab settlement or a filler), credited by its tab`);
    }
    const request = expected ?? (await this.requestOfMemo(parsed.tx));
    let match: ReturnType<typeof matchPayment>;
    try {
      match = matchPayment(parsed.tx, { destination: account, amount: request.amount, memoHash: request.memoHash });
      if (info.createdAt > request.expiresAt + LATE_PAYMENT_GRACE_MS) {
        throw new PaymentError('expired_request', `transaction ${hash} reached the ledger at ${new Date(info.createdAt).toISOString()}, ` +
          `after payment request ${request.id} expired (${new Date(request.expiresAt).toISOString()})`);
      }
    } catch (err) {
      // Not credited, but seen: the visitor's pay page says what arrived.
      const note = isPaymentError(err) ? noteFor(err, parsed.tx, request, account) : undefined;
      if (note) await db.addNote(request.id, info.hash, note, this.o.now());
      throw err;
    }
    const opIds = await horizonCall(() => this.o.horizon.operationIds(hash, signal), `list the operations of ${hash}`);
    const operationId = opIds[match.opIndex];
    if (operationId === undefined) throw new PaymentError('horizon_unavailable', `Horizon listed no operation ${match.opIndex} for ${hash}`);
    const bytes = Number((match.amount * BigInt(MIB)) / (this.o.priceOf(request.service) || 1n));
    const full = (await db.request(request.id))!;
    const { visitorKey, ...req } = full;
    const receipt = await db.credit({
      request: req, operationId, transactionHash: info.hash, from: match.from, amount: match.amount,
      creditBytes: Math.max(request.creditBytes, bytes), via, createdAt: this.o.now(),
    });
    this.o.log.info(`credited ${formatXlm(match.amount).replace(/\.?0+$/, '')} XLM from ${match.from} to request ${request.id} (${via}, operation ${operationId})`);
    this.o.onComplete({ receipt, request: { ...req, status: 'paid' }, visitorKey });
    return receipt;
  }

  private async requestOfMemo(tx: Transaction): Promise<PaymentRequest> {
    const memo = tx.memo;
    if (memo.type !== 'hash' || memo.value === null) throw new PaymentError('wrong_memo', 'the payment carries no MEMO_HASH of a payment request');
    const hex = Buffer.from(memo.value as Buffer).toString('hex');
    const r = await this.o.db.requestByMemo(hex);
    if (!r) throw new PaymentError('wrong_memo', `no payment request has the memo ${hex}`);
    const { visitorKey: _v, ...request } = r;
    return request;
  }
}

async function horizonCall<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HorizonUnavailable) throw new PaymentError('horizon_unavailable', `could not ${what}: ${err.message}`, { cause: err });
    throw err;
  }
}
