// Shared test helpers: transactions built offline with the SDK, configs, a capturing logger, and a
// Horizon wrapper that can be made to fail. Only erasable TypeScript here: crash-child.ts imports it too
// when run by Node's own type stripping.
import { Writable } from 'node:stream';
import { Account, Asset, Keypair, Memo, Operation, TransactionBuilder, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../../config/amount.js';
import type { PaymentsConfig } from '../../config/config.js';
import { Secret } from '../../config/secret.js';
import { createLogger, type Logger } from '../../log/logger.js';
import { PaymentError } from '../errors.js';
import { HorizonUnavailable, type AccountInfo, type HorizonApi } from '../horizon.js';

export interface PaymentSpec {
  source: Keypair;
  /** The source account's CURRENT sequence (the transaction gets sequence + 1). */
  sequence: bigint;
  destination: string;
  amount: bigint;
  memoHex?: string | undefined;
  memoText?: string;
  passphrase: string;
  asset?: Asset;
  fee?: string;
  timebounds?: { minTime: number; maxTime: number };
  /** Default [source]. */
  signers?: Keypair[];
  /** The payment operation's own source (default: the transaction's). */
  opSource?: string;
}

export function paymentTransaction(p: PaymentSpec): Transaction {
  const b = new TransactionBuilder(new Account(p.source.publicKey(), p.sequence.toString()), {
    fee: p.fee ?? '100',
    networkPassphrase: p.passphrase,
    ...(p.timebounds ? { timebounds: p.timebounds } : {}),
  }).addOperation(
    Operation.payment({
      destination: p.destination,
      asset: p.asset ?? Asset.native(),
      amount: formatXlm(p.amount),
      ...(p.opSource ? { source: p.opSource } : {}),
    }),
  );
  if (p.memoHex !== undefined) b.addMemo(Memo.hash(p.memoHex));
  else if (p.memoText !== undefined) b.addMemo(Memo.text(p.memoText));
  if (!p.timebounds) b.setTimeout(300);
  const tx = b.build();
  tx.sign(...(p.signers ?? [p.source]));
  return tx;
}

export function paymentXdr(p: PaymentSpec): string {
  return paymentTransaction(p).toXDR();
}

export interface TabTxSpec {
  bridge: string;
  /** The tab's reserved sequence number (the transaction carries exactly this). */
  sequence: bigint | string;
  payer: Keypair;
  amount: bigint;
  memoHex: string;
  passphrase: string;
  maxTime: number;
  minTime?: number;
  fee?: string;
  signers?: Keypair[];
  destination?: string;
}

/** A tab transaction: source = the bridge at the tab's sequence, payment from the payer, signed by the payer. */
export function tabXdr(t: TabTxSpec): string {
  return paymentTransaction({
    source: Keypair.fromPublicKey(t.bridge),
    sequence: BigInt(t.sequence) - 1n,
    destination: t.destination ?? t.bridge,
    amount: t.amount,
    memoHex: t.memoHex,
    passphrase: t.passphrase,
    fee: t.fee ?? '100',
    timebounds: { minTime: t.minTime ?? 0, maxTime: t.maxTime },
    signers: t.signers ?? [t.payer],
    opSource: t.payer.publicKey(),
  }).toXDR();
}

export function testConfig(seed: string | undefined, overrides: Partial<PaymentsConfig> = {}): PaymentsConfig {
  return {
    seed: seed === undefined ? undefined : new Secret(seed),
    network: 'local',
    horizonUrl: '',
    passphrase: undefined,
    freeBytes: 5 * 1024 * 1024,
    graceSeconds: 10,
    throttleBytesPerSec: 32 * 1024,
    pricePerMibStroops: 10_000n, // 0.001 XLM
    paymentMib: 100,
    requestTtlSeconds: 900,
    tabSettleSeconds: 60,
    tabMaxUnsettledStroops: 10_000_000n,
    adminToken: undefined,
    paywall: 'page',
    paywallTemplate: undefined,
    ...overrides,
  };
}

/** A real winston logger (JSON) whose output is kept, WITHOUT the redaction safety net unless `secrets`. */
export function capturingLogger(secrets: string[] = []): { log: Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', json: true, stream, secrets }), text: () => chunks.join('') };
}

/** Wraps a Horizon and can make its calls fail, as a flaky network would. */
export class FlakyHorizon implements HorizonApi {
  readonly inner: HorizonApi;
  /** Calls by name that fail with this error while set. */
  readonly failing = new Map<keyof HorizonApi, Error>();
  /** Submissions that reach the ledger but whose answer is lost (the outcome is unknown to the caller). */
  loseSubmitAnswers = 0;
  /** Rewrites accounts as loaded (signers, thresholds the local ledger cannot set). */
  mapAccount: ((a: AccountInfo) => AccountInfo) | undefined;
  /** false: the payment stream never delivers (to test the other ways in alone). */
  streaming = true;

  constructor(inner: HorizonApi) {
    this.inner = inner;
  }

  get url(): string {
    return this.inner.url;
  }

  private check(name: keyof HorizonApi): void {
    const err = this.failing.get(name);
    if (err) throw err;
  }

  async networkPassphrase(signal?: AbortSignal) {
    this.check('networkPassphrase');
    return this.inner.networkPassphrase(signal);
  }
  async account(id: string, signal?: AbortSignal) {
    this.check('account');
    const a = await this.inner.account(id, signal);
    return a && this.mapAccount ? this.mapAccount(a) : a;
  }
  async submit(tx: Parameters<HorizonApi['submit']>[0], signal?: AbortSignal) {
    this.check('submit');
    const r = await this.inner.submit(tx, signal);
    if (this.loseSubmitAnswers > 0) {
      this.loseSubmitAnswers--;
      throw new HorizonUnavailable('the answer was lost (test)');
    }
    return r;
  }
  async transaction(hash: string, signal?: AbortSignal) {
    this.check('transaction');
    return this.inner.transaction(hash, signal);
  }
  async operationIds(hash: string, signal?: AbortSignal) {
    this.check('operationIds');
    return this.inner.operationIds(hash, signal);
  }
  async latestPaymentCursor(account: string, signal?: AbortSignal) {
    this.check('latestPaymentCursor');
    return this.inner.latestPaymentCursor(account, signal);
  }
  streamPayments(account: string, cursor: string, handlers: Parameters<HorizonApi['streamPayments']>[2]) {
    if (!this.streaming) return () => {};
    return this.inner.streamPayments(account, cursor, handlers);
  }
}

/** Polls `cond` until true or `ms` elapse. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The PaymentError that `p` (a promise, or a function to call) rejects or throws with; anything else fails. */
export async function paymentErrorOf(p: Promise<unknown> | (() => unknown)): Promise<PaymentError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof PaymentError) return err;
    throw err;
  }
  throw new Error('expected a PaymentError');
}
