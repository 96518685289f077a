// A thin typed wrapper over the SDK's Horizon.Server: only what the payments service needs, each call
// with a timeout and an optional AbortSignal, results reduced to plain typed values, errors reduced to two
// kinds (rejected by Horizon, or Horizon unreachable). The service depends on the `HorizonApi` interface,
// so its tests can swap in a fake.
import { Horizon, NotFoundError, TransactionFailedError, type FeeBumpTransaction, type Transaction } from '@stellar/stellar-sdk';
import { parseXlm } from '../config/amount.js';

export interface AccountInfo {
  id: string;
  sequence: bigint;
  /** Native balance, stroops. */
  balance: bigint;
  sellingLiabilities: bigint;
  subentryCount: number;
  numSponsoring: number;
  numSponsored: number;
  thresholds: { low: number; med: number; high: number };
  signers: Array<{ key: string; weight: number }>;
}

export interface TransactionInfo {
  hash: string;
  ledger: number;
  /** Ledger close time, ms. */
  createdAt: number;
  successful: boolean;
  envelopeXdr: string;
  sourceAccount: string;
}

/** One record of the account's payments stream, as much as the bridge reads. */
export interface PaymentRecord {
  id: string;
  pagingToken: string;
  type: string;
  transactionHash: string;
  to: string | undefined;
}

export interface SubmitResult {
  hash: string;
  ledger: number;
}

/** Horizon answered and refused the transaction: `txCode` is e.g. tx_bad_seq, `opCodes` per operation. */
export class SubmitRejected extends Error {
  readonly txCode: string;
  readonly opCodes: string[];

  constructor(txCode: string, opCodes: string[]) {
    super(`Horizon refused the transaction: ${txCode}${opCodes.length ? ` (${opCodes.join(', ')})` : ''}`);
    this.name = 'SubmitRejected';
    this.txCode = txCode;
    this.opCodes = opCodes;
  }
}

/** Horizon could not be reached or answered something unexpected; the outcome is unknown. */
export class HorizonUnavailable extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'HorizonUnavailable';
  }
}

export interface StreamHandlers {
  onRecord: (record: PaymentRecord) => void;
  onError: (err: Error) => void;
}

export interface HorizonApi {
  readonly url: string;
  networkPassphrase(signal?: AbortSignal): Promise<string>;
  /** undefined: the account does not exist (not funded). */
  account(id: string, signal?: AbortSignal): Promise<AccountInfo | undefined>;
  /** Throws SubmitRejected or HorizonUnavailable. */
  submit(tx: Transaction | FeeBumpTransaction, signal?: AbortSignal): Promise<SubmitResult>;
  /** undefined: Horizon does not know the transaction. */
  transaction(hash: string, signal?: AbortSignal): Promise<TransactionInfo | undefined>;
  /** The ids of the transaction's operations, in order (operation ids are what credits are keyed on). */
  operationIds(hash: string, signal?: AbortSignal): Promise<string[]>;
  /** The paging token of the account's newest payment, if any. */
  latestPaymentCursor(account: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Streams payments of `account` after `cursor` ('now' for new ones only). Returns a close function. */
  streamPayments(account: string, cursor: string, handlers: StreamHandlers): () => void;
}

export interface HorizonClientOptions {
  /** Per request, ms (submission included). Default 20 s. */
  timeoutMs?: number;
}

type Json = Record<string, unknown>;

export class HorizonClient implements HorizonApi {
  readonly url: string;
  private readonly server: Horizon.Server;
  private readonly timeoutMs: number;

  constructor(url: string, opts: HorizonClientOptions = {}) {
    this.url = url;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
    this.server = new Horizon.Server(url, { allowHttp: url.startsWith('http://') });
    this.server.httpClient.defaults.timeout = this.timeoutMs;
  }

  async networkPassphrase(signal?: AbortSignal): Promise<string> {
    const root = await this.call(() => this.server.root(), 'read the root', signal);
    if (typeof root.network_passphrase !== 'string') throw new HorizonUnavailable(`${this.url} did not report a network_passphrase`);
    return root.network_passphrase;
  }

  async account(id: string, signal?: AbortSignal): Promise<AccountInfo | undefined> {
    try {
      const a = (await this.call(() => this.server.accounts().accountId(id).call(), `load account ${id}`, signal)) as unknown as Json;
      return toAccount(a);
    } catch (err) {
      if (err instanceof HorizonUnavailable && err.cause instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async submit(tx: Transaction | FeeBumpTransaction, signal?: AbortSignal): Promise<SubmitResult> {
    try {
      // skipMemoRequiredCheck: our transactions pay the bridge itself or bump its sequence; SEP-29 is moot.
      const r = (await this.call(() => this.server.submitTransaction(tx, { skipMemoRequiredCheck: true }), 'submit a transaction', signal)) as unknown as Json;
      return { hash: String(r.hash), ledger: Number(r.ledger ?? 0) };
    } catch (err) {
      const cause = err instanceof HorizonUnavailable ? err.cause : err;
      if (cause instanceof TransactionFailedError) {
        const codes = cause.getResultCodes();
        throw new SubmitRejected(String(codes.transaction), (codes.operations ?? []).map(String));
      }
      // Any other 4xx is an answer too (a malformed envelope, say): the transaction was not accepted.
      const status = (cause as { response?: { status?: number } } | undefined)?.response?.status;
      if (status !== undefined && status >= 400 && status < 500) throw new SubmitRejected(`http_${status}`, []);
      throw err;
    }
  }

  async transaction(hash: string, signal?: AbortSignal): Promise<TransactionInfo | undefined> {
    try {
      const t = (await this.call(() => this.server.transactions().transaction(hash).call(), `look up transaction ${hash}`, signal)) as unknown as Json;
      const ledger = typeof t.ledger === 'number' ? t.ledger : Number(t.ledger_attr ?? 0);
      return {
        hash: String(t.hash),
        ledger,
        createdAt: Date.parse(String(t.created_at)),
        successful: t.successful !== false,
        envelopeXdr: String(t.envelope_xdr),
        sourceAccount: String(t.source_account),
      };
    } catch (err) {
      if (err instanceof HorizonUnavailable && err.cause instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async operationIds(hash: string, signal?: AbortSignal): Promise<string[]> {
    const page = await this.call(() => this.server.operations().forTransaction(hash).limit(200).call(), `list the operations of ${hash}`, signal);
    return page.records.map((r) => String(r.id));
  }

  async latestPaymentCursor(account: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const page = await this.call(() => this.server.payments().forAccount(account).order('desc').limit(1).call(), 'read the latest payment', signal);
      return page.records[0]?.paging_token;
    } catch (err) {
      if (err instanceof HorizonUnavailable && err.cause instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  streamPayments(account: string, cursor: string, handlers: StreamHandlers): () => void {
    return this.server.payments().forAccount(account).cursor(cursor).stream({
      onmessage: (r) => {
        const rec = r as unknown as Json;
        handlers.onRecord({
          id: String(rec.id),
          pagingToken: String(rec.paging_token),
          type: String(rec.type),
          transactionHash: String(rec.transaction_hash),
          to: typeof rec.to === 'string' ? rec.to : typeof rec.account === 'string' ? rec.account : undefined,
        });
      },
      onerror: (e) => handlers.onError(new HorizonUnavailable(`payment stream from ${this.url}: ${describe(e)}`)),
    });
  }

  /** Runs an SDK call under the timeout and the signal; anything thrown becomes HorizonUnavailable (cause kept). */
  private async call<T>(fn: () => Promise<T>, what: string, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let onAbort: () => void = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new HorizonUnavailable(`${what} at ${this.url}: ${signal?.aborted ? 'aborted' : `no answer within ${this.timeoutMs} ms`}`));
      abort.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(), aborted]);
    } catch (err) {
      if (err instanceof HorizonUnavailable) throw err;
      throw new HorizonUnavailable(`${what} at ${this.url}: ${describe(err)}`, err);
    } finally {
      abort.removeEventListener('abort', onAbort);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const m = (err as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' && m ? m : 'connection error';
}

function toAccount(a: Json): AccountInfo {
  const balances = (Array.isArray(a.balances) ? a.balances : []) as Json[];
  const native = balances.find((b) => b.asset_type === 'native');
  const t = (a.thresholds ?? {}) as Json;
  const id = String(a.account_id ?? a.id);
  const signers = Array.isArray(a.signers)
    ? (a.signers as Json[]).map((s) => ({ key: String(s.key ?? s.public_key), weight: Number(s.weight ?? 0) }))
    : [{ key: id, weight: 1 }]; // a minimal Horizon (the local ledger) may omit signers: the master key alone
  return {
    id,
    sequence: BigInt(String(a.sequence)),
    balance: parseXlm(String(native?.balance ?? '0')) ?? 0n,
    sellingLiabilities: parseXlm(String(native?.selling_liabilities ?? '0')) ?? 0n,
    subentryCount: Number(a.subentry_count ?? 0),
    numSponsoring: Number(a.num_sponsoring ?? 0),
    numSponsored: Number(a.num_sponsored ?? 0),
    thresholds: { low: Number(t.low_threshold ?? 0), med: Number(t.med_threshold ?? 0), high: Number(t.high_threshold ?? 0) },
    signers,
  };
}

/** Stellar's base reserve on the public and test networks: 0.5 XLM per base entry and subentry. */
export const BASE_RESERVE_STROOPS = 5_000_000n;

/** What the account can pay without dropping below its minimum balance. */
export function spendableBalance(a: AccountInfo, baseReserve = BASE_RESERVE_STROOPS): bigint {
  const entries = BigInt(2 + a.subentryCount + a.numSponsoring - a.numSponsored);
  const spendable = a.balance - entries * baseReserve - a.sellingLiabilities;
  return spendable > 0n ? spendable : 0n;
}

/** The weight of `key` among the account's signers (0 if it is not one). */
export function signerWeight(a: AccountInfo, key: string): number {
  return a.signers.find((s) => s.key === key)?.weight ?? 0;
}
