// Paying the bridge, in two modes:
//   - chain: a classic payment transaction from the payer's account with the request's MEMO_HASH, handed to
//     the bridge as XDR (POST <request URL>/payments {"xdr"}); the bridge submits it and credits it. When the
//     outcome is unknown (the bridge's Horizon failed, the answer was lost) the client looks the transaction
//     up on its own Horizon, submits it there if needed, and tells the bridge its hash ({"hash"}).
//   - tab (default): the bridge opens a tab (POST /v1/tabs) and the payer signs, per increment, a transaction
//     whose SOURCE is the bridge's account at the tab's reserved sequence number and whose single payment
//     operation comes from the payer, carrying the CUMULATIVE amount (POST /v1/tabs/<id> {"xdr"}). Only one
//     of a tab's transactions can ever execute (they share one sequence number), and the payer signs only its
//     own payment: it cannot be made to pay the fee or anything else. See payments/tabs.ts.
//
// Every network passphrase the bridge names is compared with the one of the payer's own Horizon (--horizon)
// before anything is signed: a bridge cannot get a signature valid on another network (the public one).
//
// THE BUDGET (--max-spend) bounds what the payer can be charged, counted when a signed transaction leaves
// the process, whatever the bridge answers: every chain payment sent, plus per tab the largest cumulative
// amount sent (only one of a tab's transactions can execute). `paid` counts what the bridge confirmed.
import { Account, Asset, Memo, Operation, StrKey, TransactionBuilder, type Keypair, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import type { HorizonApi } from '../payments/horizon.js';
import { SubmitRejected } from '../payments/horizon.js';
import { BridgeApi, BridgeApiError, type PaymentRequestInfo, type ReceiptInfo, type TabState } from './bridge-api.js';
import { BudgetExhaustedError, PaymentFailedError, StaleRequestError } from './errors.js';

export type PayMode = 'tab' | 'chain';

/** What the payer needs of Horizon (payments/horizon.ts HorizonClient implements it). */
export type LedgerApi = Pick<HorizonApi, 'url' | 'networkPassphrase' | 'account' | 'submit' | 'transaction'>;

/** The least the network accepts as a fee bid, per operation (stroops). */
export const BASE_FEE_STROOPS = 100n;
/** Default validity of a tab transaction: the bridge settles a tab at the latest a minute before it ends. */
export const DEFAULT_TAB_VALIDITY_SECONDS = 900;
/** Default validity of a chain payment transaction. */
export const CHAIN_TX_TIMEOUT_SECONDS = 180;
/** Default fee bid of a chain payment (stroops); the network charges its base fee, usually 100. */
export const DEFAULT_CHAIN_FEE_STROOPS = 1000n;

/** The terms a tab transaction is built from: payments/tabs.ts TabInfo (strings) or the client's TabState. */
export interface TabTerms {
  account: string;
  sequence: bigint | string;
  memoHex: string;
  networkPassphrase: string;
  maxFee: bigint | string;
  minRemainingSeconds: number;
  payer?: string;
  limit?: bigint | string;
}

export interface TabTxOptions {
  /** Seconds since the epoch (default: now). */
  nowSec?: number;
  /** How long the transaction stays valid (default 900 s; at least the tab's minimum + 60 s). */
  validitySeconds?: number;
}

/**
 * The tab's transaction for a CUMULATIVE amount, signed by the payer only: source = the bridge's account at
 * the tab's reserved sequence number, one payment of `cumulativeStroops` XLM from the payer to the bridge,
 * the tab's MEMO_HASH, minTime 0 and an upper time bound, fee bid = the most the bridge agreed to pay.
 * Returns the base64 envelope. Pure: no I/O.
 */
export function buildTabTransaction(tab: TabTerms, cumulativeStroops: bigint, payer: Keypair, opts: TabTxOptions = {}): string {
  if (cumulativeStroops <= 0n) throw new RangeError('a tab transaction needs a positive cumulative amount');
  if (tab.payer !== undefined && tab.payer !== payer.publicKey()) {
    throw new PaymentFailedError(`the tab belongs to ${tab.payer}, not to this payer ${payer.publicKey()}`);
  }
  if (tab.limit !== undefined && cumulativeStroops > BigInt(tab.limit)) {
    throw new PaymentFailedError(`the tab is limited to ${formatXlm(BigInt(tab.limit))} XLM`);
  }
  if (!StrKey.isValidEd25519PublicKey(tab.account)) throw new PaymentFailedError('the tab names no valid bridge account');
  if (!/^[0-9a-f]{64}$/i.test(tab.memoHex)) throw new PaymentFailedError('the tab has no 32-byte memo');
  const maxFee = BigInt(tab.maxFee);
  if (maxFee < BASE_FEE_STROOPS) throw new PaymentFailedError(`the bridge pays at most ${maxFee} stroops of fee: too little for the network`);
  const sequence = BigInt(tab.sequence);
  const nowSec = opts.nowSec ?? Math.floor(Date.now() / 1000);
  const validity = Math.max(opts.validitySeconds ?? DEFAULT_TAB_VALIDITY_SECONDS, tab.minRemainingSeconds + 60);
  const tx = new TransactionBuilder(new Account(tab.account, (sequence - 1n).toString()), {
    fee: maxFee.toString(),
    networkPassphrase: tab.networkPassphrase,
    timebounds: { minTime: 0, maxTime: nowSec + validity },
  })
    .addOperation(
      Operation.payment({ destination: tab.account, asset: Asset.native(), amount: formatXlm(cumulativeStroops), source: payer.publicKey() }),
    )
    .addMemo(Memo.hash(tab.memoHex.toLowerCase()))
    .build();
  tx.sign(payer);
  return tx.toXDR();
}

/** A classic payment of `request` from the payer's account at `sequence` (its CURRENT sequence number). */
export function buildChainPayment(
  request: Pick<PaymentRequestInfo, 'amountStroops' | 'destination' | 'memoHex'>,
  payer: Keypair,
  sequence: bigint,
  networkPassphrase: string,
  opts: { feeStroops?: bigint; timeoutSeconds?: number } = {},
): Transaction {
  const tx = new TransactionBuilder(new Account(payer.publicKey(), sequence.toString()), {
    fee: (opts.feeStroops ?? DEFAULT_CHAIN_FEE_STROOPS).toString(),
    networkPassphrase,
  })
    .addOperation(Operation.payment({ destination: request.destination, asset: Asset.native(), amount: formatXlm(request.amountStroops) }))
    .addMemo(Memo.hash(request.memoHex))
    .setTimeout(opts.timeoutSeconds ?? CHAIN_TX_TIMEOUT_SECONDS)
    .build();
  tx.sign(payer);
  return tx;
}

/** One payment the client made. */
export interface PaymentRecord {
  mode: PayMode;
  requestId: string;
  /** This payment's amount (for a tab: the increment). */
  amountStroops: bigint;
  /** Tab mode: the tab and its cumulative amount after this payment. */
  tabId?: string;
  cumulativeStroops?: bigint;
  /** Chain mode: the transaction's hash. */
  transactionHash?: string;
  /** Bytes of credit bought, if known. */
  creditBytes?: number;
  receipt: ReceiptInfo;
}

export interface PayerOptions {
  mode: PayMode;
  keypair: Keypair;
  maxSpendStroops: bigint;
  ledger: LedgerApi;
  api: BridgeApi;
  /** The visitor's session token, when known (a tab can be opened by it). */
  sessionToken: () => string | undefined;
  tabValiditySeconds?: number;
  chainFeeStroops?: bigint;
  onEvent?: (message: string) => void;
  now?: () => number;
  /** Chain mode, outcome unknown: how long to keep telling the bridge the hash. Default 30 s. */
  confirmTimeoutMs?: number;
}

/** A tab increment worth less than this much credit is not worth signing (bytes). */
const MIN_USEFUL_CREDIT_BYTES = 64 * 1024;

export class Payer {
  private readonly o: PayerOptions;
  private readonly now: () => number;
  private passphrase: string | undefined;
  /** Chain payments sent (stroops). */
  private chainSent = 0n;
  /** Per tab: the largest cumulative amount sent (or seen accepted). */
  private readonly tabSent = new Map<string, bigint>();
  /** Per tab: its amount when this payer first saw it (an earlier run's payments are not this run's spending). */
  private readonly tabBase = new Map<string, bigint>();
  private tab: { state: TabState; apiBase: string; fresh: boolean } | undefined;
  private readonly done: PaymentRecord[] = [];

  constructor(o: PayerOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  get account(): string {
    return this.o.keypair.publicKey();
  }

  /** What the payer can be charged at most, given what it has signed and sent. */
  get spentStroops(): bigint {
    let s = this.chainSent;
    for (const [id, v] of this.tabSent) s += v - (this.tabBase.get(id) ?? 0n);
    return s;
  }

  /** What the bridge confirmed (receipts). */
  get paidStroops(): bigint {
    return this.done.reduce((s, p) => s + p.amountStroops, 0n);
  }

  get leftStroops(): bigint {
    const left = this.o.maxSpendStroops - this.spentStroops;
    return left > 0n ? left : 0n;
  }

  get payments(): readonly PaymentRecord[] {
    return this.done;
  }

  /** Reads the network passphrase of the payer's Horizon; every request and tab must name the same. */
  async init(): Promise<string> {
    try {
      this.passphrase = await this.o.ledger.networkPassphrase();
    } catch (err) {
      throw new PaymentFailedError(`cannot read the network passphrase from Horizon at ${this.o.ledger.url}: ${(err as Error).message}`, { cause: err });
    }
    return this.passphrase;
  }

  /**
   * Pays `request` (whose JSON lives at `requestUrl`). Throws BudgetExhaustedError when the next payment would
   * exceed --max-spend, StaleRequestError when the request cannot be paid any more (ask again), and
   * PaymentFailedError when the bridge or the ledger refuses.
   */
  async pay(request: PaymentRequestInfo, requestUrl: string): Promise<PaymentRecord> {
    const passphrase = this.passphrase ?? (await this.init());
    if (request.networkPassphrase !== passphrase) throw this.wrongNetwork(request.networkPassphrase, passphrase);
    if (request.destination === this.account) throw new PaymentFailedError('the bridge asks to be paid to the payer\'s own account');
    const record = this.o.mode === 'tab' ? await this.payTab(request, requestUrl, passphrase) : await this.payChain(request, requestUrl, passphrase);
    this.done.push(record);
    return record;
  }

  private wrongNetwork(asked: string, ours: string): PaymentFailedError {
    return new PaymentFailedError(
      `the bridge asks for a payment on the network "${asked}", but Horizon at ${this.o.ledger.url} serves "${ours}"; refusing to sign`,
    );
  }

  private event(message: string): void {
    this.o.onEvent?.(message);
  }

  // --- tab mode ----------------------------------------------------------------------------------

  private async payTab(request: PaymentRequestInfo, requestUrl: string, passphrase: string): Promise<PaymentRecord> {
    const apiBase = BridgeApi.apiBase(requestUrl);
    for (let attempt = 0; ; attempt++) {
      const tab = await this.currentTab(request, apiBase, passphrase);
      const room = tab.limit - tab.amount;
      if (room <= 0n) throw new PaymentFailedError(`tab ${tab.id} reached its limit of ${formatXlm(tab.limit)} XLM (the payer's spendable balance when it opened)`);
      // Per tab, the budget counts the largest cumulative amount sent: raising it costs (cum - sent so far).
      const sentHere = this.tabSent.get(tab.id) ?? 0n;
      const budgetLeft = this.o.maxSpendStroops - this.spentStroops + sentHere - tab.amount;
      let increment = request.amountStroops;
      if (increment > room) increment = room;
      if (increment > budgetLeft) increment = budgetLeft;
      if (increment <= 0n || (increment < request.amountStroops && !this.worthIt(increment, request))) {
        throw new BudgetExhaustedError(request.amountStroops, this.leftStroops, this.o.maxSpendStroops);
      }
      const cumulative = tab.amount + increment;
      const xdr = buildTabTransaction(tab, cumulative, this.o.keypair, {
        nowSec: Math.floor(this.now() / 1000),
        ...(this.o.tabValiditySeconds !== undefined ? { validitySeconds: this.o.tabValiditySeconds } : {}),
      });
      if (cumulative > sentHere) this.tabSent.set(tab.id, cumulative);
      try {
        const r = await this.o.api.submitTab(apiBase, tab.id, xdr);
        this.accepted(tab, r.tab, cumulative);
        const credit = r.receipt.creditBytes ?? creditFor(increment, request);
        this.event(`paid ${formatXlm(increment)} XLM on tab ${tab.id} (cumulative ${formatXlm(cumulative)} XLM)`);
        return {
          mode: 'tab', requestId: request.id, amountStroops: increment, tabId: tab.id, cumulativeStroops: cumulative,
          ...(credit !== undefined ? { creditBytes: credit } : {}), receipt: r.receipt,
        };
      } catch (err) {
        if (attempt >= 2) throw this.tabFailure(err);
        if (err instanceof BridgeApiError) {
          if (err.code === 'tab_closed' || err.code === 'unknown_tab') {
            this.event(`tab ${tab.id} is closed (settled by the bridge); opening a new one`);
            this.tab = undefined;
            continue;
          }
          if (err.code === 'replay' || err.code === 'not_increasing') {
            await this.refreshTab();
            continue;
          }
          throw this.tabFailure(err);
        }
        if (err instanceof PaymentFailedError || err instanceof BudgetExhaustedError) throw err;
        // Outcome unknown (the answer was lost): the tab itself says whether the amount arrived.
        this.event(`tab payment: ${(err as Error).message}; checking the tab`);
        const state = await this.refreshTab().catch(() => undefined);
        if (state && state.amount >= cumulative) {
          this.event(`paid ${formatXlm(increment)} XLM on tab ${tab.id} (cumulative ${formatXlm(cumulative)} XLM)`);
          return { mode: 'tab', requestId: request.id, amountStroops: increment, tabId: tab.id, cumulativeStroops: cumulative, receipt: {} };
        }
      }
    }
  }

  private worthIt(increment: bigint, request: PaymentRequestInfo): boolean {
    const credit = creditFor(increment, request);
    return credit === undefined ? increment * 10n >= request.amountStroops : credit >= MIN_USEFUL_CREDIT_BYTES;
  }

  private tabFailure(err: unknown): Error {
    if (err instanceof PaymentFailedError || err instanceof BudgetExhaustedError) return err;
    if (err instanceof BridgeApiError) return new PaymentFailedError(`the bridge refused the tab payment (${err.code}): ${err.message}`, { cause: err });
    return new PaymentFailedError(`tab payment failed: ${(err as Error).message}`, { cause: err });
  }

  /** The open tab, re-read from the bridge before each increment (it may have been settled meanwhile). */
  private async currentTab(request: PaymentRequestInfo, apiBase: string, passphrase: string): Promise<TabState> {
    if (this.tab && this.tab.apiBase === apiBase) {
      if (this.tab.fresh) {
        this.tab.fresh = false;
        return this.tab.state;
      }
      const state = await this.refreshTab().catch((err: unknown) => {
        if (err instanceof BridgeApiError && err.code === 'unknown_tab') return undefined;
        // A bridge without GET /v1/tabs/:id: go on with what we know (a closed tab answers tab_closed).
        if (err instanceof BridgeApiError && (err.status === 404 || err.status === 405)) return this.tab?.state;
        throw err;
      });
      if (state && state.status === 'open') return state;
      this.event(`tab ${this.tab?.state.id ?? ''} is ${state?.status ?? 'gone'}; opening a new one`);
      this.tab = undefined;
    }
    const token = this.o.sessionToken();
    const byRequest = request.status === undefined || request.status === 'open';
    if (!byRequest && !token) throw new StaleRequestError(`payment request ${request.id} is ${request.status}`);
    let state: TabState;
    try {
      state = await this.o.api.openTab(apiBase, byRequest ? { requestId: request.id } : { session: token! }, this.account);
    } catch (err) {
      if (err instanceof BridgeApiError) {
        if (err.code === 'expired_request' || err.code === 'rate_limited') throw new StaleRequestError(err.message);
        throw new PaymentFailedError(`the bridge would not open a tab (${err.code}): ${err.message}`, { cause: err });
      }
      throw err;
    }
    this.checkTab(state, request, passphrase);
    // The bridge may hand back this payer's tab that is already open, with an amount paid by an earlier run:
    // that is the baseline, not spending of this run.
    if (!this.tabBase.has(state.id)) {
      this.tabBase.set(state.id, state.amount);
      this.tabSent.set(state.id, state.amount);
    }
    const sent = this.tabSent.get(state.id)!;
    if (state.amount > sent) this.tabSent.set(state.id, state.amount);
    this.tab = { state, apiBase, fresh: true };
    this.event(`opened tab ${state.id} at sequence ${state.sequence} of ${state.account} (limit ${formatXlm(state.limit)} XLM)`);
    return state;
  }

  private checkTab(tab: TabState, request: PaymentRequestInfo, passphrase: string): void {
    if (tab.networkPassphrase !== passphrase) throw this.wrongNetwork(tab.networkPassphrase, passphrase);
    if (tab.payer !== this.account) throw new PaymentFailedError(`the bridge opened a tab for ${tab.payer}, not for ${this.account}`);
    if (tab.account !== request.destination) {
      throw new PaymentFailedError(`the tab pays ${tab.account}, but the payment request names ${request.destination}`);
    }
    if (tab.status !== 'open') throw new PaymentFailedError(`the bridge opened tab ${tab.id} in status ${tab.status}`);
  }

  private async refreshTab(): Promise<TabState | undefined> {
    const t = this.tab;
    if (!t) return undefined;
    const state = await this.o.api.getTab(t.apiBase, t.state.id);
    if (state.id !== t.state.id || state.sequence !== t.state.sequence || state.account !== t.state.account || state.payer !== t.state.payer) {
      throw new PaymentFailedError(`the bridge changed the terms of tab ${t.state.id}`);
    }
    if (state.networkPassphrase !== t.state.networkPassphrase) throw new PaymentFailedError(`the bridge changed the network of tab ${t.state.id}`);
    const sent = this.tabSent.get(state.id) ?? 0n;
    if (state.amount > sent) this.tabSent.set(state.id, state.amount);
    t.state = state;
    return state;
  }

  private accepted(tab: TabState, answered: TabState | undefined, cumulative: bigint): void {
    const t = this.tab;
    if (!t || t.state.id !== tab.id) return;
    const amount = answered && answered.id === tab.id && answered.amount >= cumulative ? answered.amount : cumulative;
    t.state = { ...t.state, amount, status: answered?.id === tab.id ? answered.status : t.state.status };
  }

  // --- chain mode --------------------------------------------------------------------------------

  private async payChain(request: PaymentRequestInfo, requestUrl: string, passphrase: string): Promise<PaymentRecord> {
    if (request.status !== undefined && request.status !== 'open') throw new StaleRequestError(`payment request ${request.id} is ${request.status}`);
    if (request.expiresAt !== undefined && request.expiresAt <= this.now()) throw new StaleRequestError(`payment request ${request.id} has expired`);
    if (request.amountStroops > this.leftStroops) {
      throw new BudgetExhaustedError(request.amountStroops, this.leftStroops, this.o.maxSpendStroops);
    }
    let account;
    try {
      account = await this.o.ledger.account(this.account);
    } catch (err) {
      throw new PaymentFailedError(`cannot load the payer's account ${this.account} from ${this.o.ledger.url}: ${(err as Error).message}`, { cause: err });
    }
    if (!account) throw new PaymentFailedError(`the payer's account ${this.account} does not exist on this network (fund it first)`);
    const tx = buildChainPayment(request, this.o.keypair, account.sequence, passphrase, {
      ...(this.o.chainFeeStroops !== undefined ? { feeStroops: this.o.chainFeeStroops } : {}),
    });
    const hash = Buffer.from(tx.hash()).toString('hex');
    this.chainSent += request.amountStroops;
    let receipt: ReceiptInfo;
    try {
      receipt = await this.o.api.submitPaymentXdr(requestUrl, tx.toXDR());
    } catch (err) {
      if (err instanceof BridgeApiError && err.code !== 'horizon_unavailable' && !err.code.startsWith('http_5')) {
        if (err.code === 'already_paid' || err.code === 'expired_request') throw new StaleRequestError(err.message);
        throw new PaymentFailedError(`the bridge refused the payment (${err.code}): ${err.message}`, { cause: err });
      }
      this.event(`payment ${hash}: ${(err as Error).message}; settling it through ${this.o.ledger.url}`);
      receipt = await this.confirmByHash(tx, hash, requestUrl);
    }
    this.event(`paid ${formatXlm(request.amountStroops)} XLM for request ${request.id} (transaction ${hash})`);
    const credit = receipt.creditBytes ?? request.creditBytes;
    return {
      mode: 'chain', requestId: request.id, amountStroops: request.amountStroops, transactionHash: hash,
      ...(credit !== undefined ? { creditBytes: credit } : {}), receipt,
    };
  }

  /** The outcome of a submission is unknown: make sure the transaction is on the ledger, then give the bridge its hash. */
  private async confirmByHash(tx: Transaction, hash: string, requestUrl: string): Promise<ReceiptInfo> {
    let found = await this.o.ledger.transaction(hash).catch(() => undefined);
    if (!found) {
      try {
        await this.o.ledger.submit(tx);
      } catch (err) {
        if (!(err instanceof SubmitRejected && err.txCode === 'tx_bad_seq')) {
          throw new PaymentFailedError(`submitting the payment to ${this.o.ledger.url} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      found = await this.o.ledger.transaction(hash);
      if (!found) throw new PaymentFailedError(`the payment ${hash} is not on the ledger and could not be submitted`);
    }
    if (!found.successful) throw new PaymentFailedError(`the payment ${hash} failed on the ledger`);
    const deadline = this.now() + (this.o.confirmTimeoutMs ?? 30_000);
    for (;;) {
      try {
        return await this.o.api.submitPaymentHash(requestUrl, hash);
      } catch (err) {
        if (err instanceof BridgeApiError && err.code === 'replay') return {}; // credited already (its stream saw it)
        const retry = !(err instanceof BridgeApiError) || err.code === 'unknown_transaction' || err.code === 'horizon_unavailable' || err.code.startsWith('http_5');
        if (!retry || this.now() > deadline) {
          throw new PaymentFailedError(`the payment ${hash} is on the ledger, but the bridge did not credit it: ${(err as Error).message}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}

/** Credit an amount buys at the request's price (bytes), if the request says. */
export function creditFor(amount: bigint, request: Pick<PaymentRequestInfo, 'amountStroops' | 'creditBytes'>): number | undefined {
  if (request.creditBytes === undefined || request.amountStroops <= 0n) return undefined;
  return Number((amount * BigInt(request.creditBytes)) / request.amountStroops);
}
