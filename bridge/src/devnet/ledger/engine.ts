// The ledger's state machine: genesis, submission (validate, then apply atomically), friendbot. Each
// applied transaction closes its own ledger (sequence + 1). Listeners hear about every closed ledger
// after its SQLite transaction has committed (the streams follow them).
import { createHash } from 'node:crypto';
import { Account as SdkAccount, Keypair, Operation, StrKey, TimeoutInfinite, TransactionBuilder } from '@stellar/stellar-sdk';
import { BASE_FEE, TOTAL_COINS } from './amount.js';
import { applyOps, describeOp, newAccount, touched } from './apply.js';
import { feeBumpResultXdr, resultCodes, resultXdr, type ResultCodes, type TxOutcome } from './codes.js';
import { MalformedEnvelope, parseEnvelope, type ParsedEnvelope } from './envelope.js';
import type { LedgerRow, Store, TxRow } from './store.js';
import { validateFeeBump, validateTx, type Ctx, type Failure } from './validate.js';

export const DEFAULT_PASSPHRASE = 'TorPlus Local Ledger ; 2026';
export const FRIENDBOT_STARTING_BALANCE = '10000';

export type SubmitResult =
  /** Applied: in a ledger. `tx.successful` is false for tx_failed (fee and sequence number consumed). */
  | { status: 'applied'; tx: TxRow }
  /** Refused by validation: nothing changed. */
  | { status: 'rejected'; envelopeXdr: string; resultXdr: string; codes: ResultCodes }
  | { status: 'malformed'; envelopeXdr: string; detail: string };

export class FriendbotError extends Error {}

const TX_ORDER = 1n; // one transaction per ledger
export const txToid = (ledger: number): bigint => (BigInt(ledger) << 32n) | (TX_ORDER << 12n);
/** The paging token just past every record in ledgers ≤ `ledger` (Horizon's cursor "now"). */
export const nowToken = (ledger: number): bigint => (BigInt(ledger + 1) << 32n) - 1n;

const sha256hex = (...parts: (string | Buffer)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

export class LedgerEngine {
  /** The network's root account (Keypair.master(passphrase), as on Stellar): all lumens at genesis. */
  readonly root: Keypair;
  private readonly listeners = new Set<(ledger: LedgerRow) => void>();

  constructor(
    readonly store: Store,
    readonly passphrase: string,
    private readonly clock: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.root = Keypair.master(passphrase);
    this.init();
  }

  /** Creates genesis on an empty database; refuses a database made for another network. */
  private init(): void {
    const stored = this.store.getMeta('network_passphrase');
    if (stored !== undefined && stored !== this.passphrase) {
      throw new Error(`this ledger's data was created for network passphrase "${stored}", not "${this.passphrase}"`);
    }
    if (this.store.latestLedger()) return;
    const closedAt = this.clock();
    this.store.atomically(() => {
      this.store.setMeta('network_passphrase', this.passphrase);
      this.store.insertLedger({
        sequence: 1,
        hash: sha256hex('genesis', this.passphrase),
        prevHash: '0'.repeat(64),
        closedAt,
        successfulTxCount: 0,
        failedTxCount: 0,
        operationCount: 0,
        txSetOperationCount: 0,
        totalCoins: TOTAL_COINS,
        feePool: 0n,
      });
      this.store.putAccount(newAccount(this.root.publicKey(), TOTAL_COINS, 0n, { ledger: 1, time: closedAt }));
    });
  }

  latestLedger(): LedgerRow {
    return this.store.latestLedger()!;
  }

  /** Called after each ledger closes (committed). Returns the unsubscribe function. */
  onLedger(fn: (ledger: LedgerRow) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Submits a base64 envelope. An envelope already applied (same hash) returns its stored result
   * without being applied again, as Horizon does.
   */
  submit(envelopeXdr: string): SubmitResult {
    let env: ParsedEnvelope;
    try {
      env = parseEnvelope(envelopeXdr.trim(), this.passphrase);
    } catch (e) {
      if (e instanceof MalformedEnvelope) return { status: 'malformed', envelopeXdr, detail: e.message };
      throw e;
    }
    const existing = this.store.getTransaction(env.hash.toString('hex'));
    if (existing) return { status: 'applied', tx: existing };
    const result = this.store.atomically(() => this.validateAndApply(env));
    if (result.status === 'applied') {
      const ledger = this.store.getLedger(result.tx.ledger)!;
      for (const fn of this.listeners) {
        try {
          fn(ledger);
        } catch {
          // A listener's failure is its own business: the ledger has closed.
        }
      }
    }
    return result;
  }

  private reject(env: ParsedEnvelope, failure: Failure, innerFailed: boolean): SubmitResult {
    const xdr =
      innerFailed && env.feeBump
        ? feeBumpResultXdr(0n, env.inner.hash, failure)
        : resultXdr(0n, failure);
    return { status: 'rejected', envelopeXdr: env.envelopeXdr, resultXdr: xdr, codes: resultCodes(failure, innerFailed) };
  }

  private validateAndApply(env: ParsedEnvelope): SubmitResult {
    const latest = this.latestLedger();
    const ctx: Ctx = { store: this.store, ledgerSeq: latest.sequence + 1, closeTime: Math.max(this.clock(), latest.closedAt) };
    const { inner, feeBump } = env;

    let outerChecker;
    if (feeBump) {
      const outer = validateFeeBump(feeBump, inner, ctx);
      if (outer.failure) return this.reject(env, outer.failure, false);
      outerChecker = outer.checker;
    }
    const v = validateTx(inner, ctx, feeBump !== undefined);
    if (v.failure) return this.reject(env, v.failure, feeBump !== undefined);
    if (outerChecker && !outerChecker.allUsed()) return this.reject(env, { code: 'tx_bad_auth_extra' }, false);

    // Charge the fee (base fee × operations, + 1 for the fee bump) and consume the sequence number.
    const opCount = BigInt(inner.ops.length);
    const feeCharged = BASE_FEE * (feeBump ? opCount + 1n : opCount);
    const feeAccountId = feeBump?.feeSource ?? inner.source;
    const payer = this.store.getAccount(feeAccountId)!;
    this.store.putAccount(touched({ ...payer, balance: payer.balance - feeCharged }, ctx));
    const source = this.store.getAccount(inner.source)!;
    this.store.putAccount(touched({ ...source, seq: inner.seq, seqLedger: ctx.ledgerSeq, seqTime: ctx.closeTime }, ctx));

    const { success, results } = applyOps(inner.ops, ctx);
    const outcome: TxOutcome = { code: success ? 'tx_success' : 'tx_failed', ops: results };
    const tx = this.record(env, ctx, outcome, feeCharged, feeAccountId);
    this.closeLedger(ctx, latest, tx);
    return { status: 'applied', tx };
  }

  private record(env: ParsedEnvelope, ctx: Ctx, outcome: TxOutcome, feeCharged: bigint, feeAccount: string): TxRow {
    const { inner, feeBump } = env;
    const success = outcome.code === 'tx_success';
    const id = txToid(ctx.ledgerSeq);
    const sigs = (s: typeof inner.signatures) => s.map((d) => Buffer.from(d.signature.value).toString('base64'));
    const tx: TxRow = {
      id,
      hash: env.hash.toString('hex'),
      innerHash: feeBump ? inner.hash.toString('hex') : null,
      ledger: ctx.ledgerSeq,
      sourceAccount: inner.source,
      sourceAccountSequence: inner.seq,
      feeAccount,
      feeCharged,
      maxFee: feeBump?.fee ?? inner.fee,
      innerMaxFee: feeBump ? inner.fee : null,
      operationCount: inner.ops.length,
      successful: success,
      createdAt: ctx.closeTime,
      memoType: inner.memo.type,
      memo: inner.memo.memo,
      memoBytes: inner.memo.memoBytes,
      envelopeXdr: env.envelopeXdr,
      resultXdr: feeBump ? feeBumpResultXdr(feeCharged, inner.hash, outcome) : resultXdr(feeCharged, outcome),
      signatures: sigs(feeBump?.signatures ?? inner.signatures),
      innerSignatures: feeBump ? sigs(inner.signatures) : null,
      validAfter: inner.timeBounds ? Number(inner.timeBounds.minTime) : null,
      validBefore: inner.timeBounds && inner.timeBounds.maxTime !== 0n ? Number(inner.timeBounds.maxTime) : null,
      resultCodes: success ? null : resultCodes(outcome, feeBump !== undefined),
    };
    const participants = new Set([inner.source, feeAccount]);
    inner.ops.forEach((op, i) => {
      const d = describeOp(op);
      for (const p of d.participants) participants.add(p);
      this.store.insertOperation(
        {
          id: id + BigInt(i + 1),
          txId: id,
          txHash: tx.hash,
          type: d.type,
          typeI: d.typeI,
          sourceAccount: op.source,
          details: d.details,
          successful: success,
          createdAt: ctx.closeTime,
          isPayment: d.isPayment,
        },
        d.participants,
      );
    });
    this.store.insertTransaction(tx, participants);
    return tx;
  }

  private closeLedger(ctx: Ctx, prev: LedgerRow, tx: TxRow): void {
    this.store.insertLedger({
      sequence: ctx.ledgerSeq,
      hash: sha256hex(prev.hash, String(ctx.ledgerSeq), tx.hash, String(ctx.closeTime)),
      prevHash: prev.hash,
      closedAt: ctx.closeTime,
      successfulTxCount: tx.successful ? 1 : 0,
      failedTxCount: tx.successful ? 0 : 1,
      operationCount: tx.successful ? tx.operationCount : 0,
      txSetOperationCount: tx.operationCount,
      totalCoins: prev.totalCoins,
      feePool: prev.feePool + tx.feeCharged,
    });
  }

  /**
   * Funds `address` with 10,000 XLM: a real createAccount transaction from the root account, so it
   * shows up in payments. Throws FriendbotError for an invalid or existing account.
   */
  friendbot(address: string): SubmitResult & { status: 'applied' } {
    if (!StrKey.isValidEd25519PublicKey(address)) throw new FriendbotError(`invalid address: ${JSON.stringify(address)}`);
    if (this.store.getAccount(address)) throw new FriendbotError(`account ${address} already exists`);
    const root = this.store.getAccount(this.root.publicKey())!;
    const tx = new TransactionBuilder(new SdkAccount(root.id, root.seq.toString()), {
      fee: BASE_FEE.toString(),
      networkPassphrase: this.passphrase,
    })
      .addOperation(Operation.createAccount({ destination: address, startingBalance: FRIENDBOT_STARTING_BALANCE }))
      .setTimeout(TimeoutInfinite)
      .build();
    tx.sign(this.root);
    const r = this.submit(tx.toXDR());
    if (r.status !== 'applied' || !r.tx.successful) {
      throw new FriendbotError(`friendbot transaction failed: ${JSON.stringify(r.status === 'applied' ? r.tx.resultCodes : r)}`);
    }
    return r;
  }
}
