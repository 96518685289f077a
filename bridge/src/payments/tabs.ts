// TAB MODE: fast small payments without a ledger round trip each.
//
// The payer hands the bridge pre-signed transactions instead of paying on-chain every time:
//   - the transaction's SOURCE is the bridge's own account, at a sequence number reserved for this tab, so
//     the payer cannot invalidate the tab by bumping its own sequence (the payer signs only its payment);
//   - its single operation is a payment FROM the payer (the operation's source) TO the bridge, in XLM, with
//     the tab's MEMO_HASH and an upper time bound;
//   - each new transaction carries the CUMULATIVE amount and replaces the last. All share one sequence
//     number, so at most one of the series can ever execute: the bridge keeps only the latest (largest).
// Each is verified offline (verify.ts: node:crypto Ed25519) and credited at once; the bridge adds its own
// signature and submits the latest when the tab is due: TAB_SETTLE_SECONDS after its first credit, when it
// reaches TAB_MAX_UNSETTLED, or SETTLE_MARGIN before its time bound runs out. A settled tab is closed; the
// payer opens a new one for further payments.
//
// SEQUENCE NUMBERS. Stellar executes an account's transactions strictly in sequence order (seq = current+1),
// and every tab holds one of the bridge account's numbers. Therefore:
//   - numbers are ALLOCATED in order, persisted (kv next_sequence, in the same SQLite transaction as the
//     tab row), never below the account's current sequence + 1 as Horizon last reported it;
//   - tabs are SETTLED in order: when any tab is due, every tab with a lower number is settled (or filled)
//     first, in one pass, even if it was not due yet, and is closed by that;
//   - a tab without a usable transaction (opened and abandoned, or whose transaction failed validity) leaves
//     a GAP, which the bridge FILLS with a no-op of its own: a transaction at that number holding a single
//     bumpSequence op (bumpTo = the last consecutive empty number, so one filler closes a whole run);
//   - a number found consumed by someone else (the publisher used the account elsewhere) loses that tab:
//     logged as an error. The bridge's account should be dedicated to the bridge.
// After a crash, a tab in 'settling' is resubmitted with the exact envelope stored before the first
// submission (same hash), and a sequence found already consumed is resolved by looking that hash up.
import { randomBytes } from 'node:crypto';
import { Account, Operation, StrKey, TransactionBuilder, type Keypair, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import type { Logger } from '../log/logger.js';
import { PaymentError } from './errors.js';
import { HorizonUnavailable, SubmitRejected, signerWeight, spendableBalance, type HorizonApi } from './horizon.js';
import { MIB, newId } from './payment-requests.js';
import type { PaymentsDatabase } from './db/payments-database.js';
import type { SessionRow, TabRow } from './db/rows.js';
import type { PaymentComplete, PaymentRequest, Receipt } from './types.js';
import { verifyTabTransaction, type TabTerms } from './verify.js';

/** Settle this long before a tab transaction's maxTime. */
export const SETTLE_MARGIN_SECONDS = 60;
/** A tab transaction must be valid at least this long when it arrives (margin + time to settle). */
export const TAB_MIN_REMAINING_SECONDS = SETTLE_MARGIN_SECONDS + 30;
/** The most fee (stroops) the bridge pays for a tab's transaction; it is the transaction's source. */
export const TAB_MAX_FEE_STROOPS = 10_000n;
/** Fee bid of the bridge's own filler transactions (charged: the network's actual fee, usually 100). */
const FILLER_FEE = '1000';

export interface TabBookOptions {
  store: PaymentsDatabase;
  horizon: HorizonApi;
  /** The bridge's keypair: signs settlements and fillers. */
  keypair: Keypair;
  passphrase: string;
  pricePerMibStroops: bigint;
  settleSeconds: number;
  maxUnsettledStroops: bigint;
  now: () => number;
  log: Logger;
  onCredit: (complete: PaymentComplete) => void;
  /** A tab's credit was taken back (its session's credit changed in the database). */
  onRevoke?: (sessionId: string) => void;
  /** An empty tab (no transaction yet) is abandoned after this long. Default max(settleSeconds, 60 s). */
  abandonAfterMs?: number;
  /** How often the settler looks at the book. Default 1 s. */
  tickMs?: number;
}

/** What a payer needs to build the tab's transactions (JSON-able). */
export interface TabInfo {
  id: string;
  requestId: string;
  payer: string;
  /** The transactions' source and the payments' destination: the bridge's account. */
  account: string;
  /** The sequence number every transaction of this tab carries. */
  sequence: string;
  memoType: 'MEMO_HASH';
  memoHex: string;
  memo: string;
  /** Stroops: the cumulative amount may not exceed it. */
  limit: string;
  /** Stroops: cumulative amount accepted so far. */
  amount: string;
  maxFee: string;
  minRemainingSeconds: number;
  networkPassphrase: string;
  status: TabRow['status'];
}

export class TabBook {
  private readonly o: TabBookOptions;
  private readonly bridge: string;
  /** The bridge account's sequence as last seen (Horizon or our own successful submissions). */
  private accountSeq: bigint | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private lastError: string | undefined;

  constructor(o: TabBookOptions) {
    this.o = o;
    this.bridge = o.keypair.publicKey();
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** Starts settling (this bridge leads tab settlement); the account's sequence is read again when not given. */
  start(accountSequence?: bigint): void {
    if (this.timer) return;
    this.accountSeq = accountSequence;
    this.timer = setInterval(() => this.kick(), this.o.tickMs ?? 1000);
    this.timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Opens a tab for `payer`, after checking its balance and that its key may sign payments alone. */
  async open(session: SessionRow, request: PaymentRequest, payer: string, signal?: AbortSignal): Promise<TabInfo> {
    if (typeof payer !== 'string' || !StrKey.isValidEd25519PublicKey(payer)) throw new PaymentError('wrong_source', 'the payer must be a Stellar account (G…, 56 characters)');
    if (payer === this.bridge) throw new PaymentError('wrong_source', 'the payer cannot be the bridge itself');
    const existing = await this.o.store.openTabOfPayer(payer);
    if (existing) {
      if (existing.sessionId === session.id) return this.info(existing);
      throw new PaymentError('tab_exists', `${payer} already has an open tab`);
    }
    const [account, own] = await Promise.all([this.o.horizon.account(payer, signal), this.o.horizon.account(this.bridge, signal)])
      .catch((err: Error) => {
        throw new PaymentError('horizon_unavailable', `could not check the payer's account: ${err.message}`, { cause: err });
      });
    if (!account) throw new PaymentError('unfunded_payer', `the payer ${payer} does not exist on this network (fund it first)`);
    if (!own) throw new PaymentError('horizon_unavailable', "Horizon no longer knows the bridge's account");
    const needed = Math.max(1, account.thresholds.med);
    const weight = signerWeight(account, payer);
    if (weight < needed) {
      throw new PaymentError('weak_signer', `the payer's key has signing weight ${weight}; payments from this account need ${needed} (medium threshold)`);
    }
    const spendable = spendableBalance(account);
    if (spendable < this.o.pricePerMibStroops) {
      throw new PaymentError('insufficient_balance', `the payer can spend ${formatXlm(spendable)} XLM; a tab needs at least ${formatXlm(this.o.pricePerMibStroops)} XLM`);
    }
    this.noteSequence(own.sequence);
    try {
      const tab = await this.o.store.insertTab({
        id: newId('tab'), requestId: request.id, sessionId: session.id, payer,
        memoHash: randomBytes(32).toString('hex'),
        limitStroops: spendable, openedAt: this.o.now(),
      }, own.sequence + 1n);
      this.o.log.info(`tab ${tab.id} opened for ${payer} at sequence ${tab.sequence}, limit ${formatXlm(spendable)} XLM`);
      return this.info(tab);
    } catch (err) {
      // One open tab per payer is the database's rule (SQLite's and PostgreSQL's unique violation).
      if (['SQLITE_CONSTRAINT_UNIQUE', '23505'].includes(String((err as { code?: string }).code))) throw new PaymentError('tab_exists', `${payer} already has an open tab`);
      throw err;
    }
  }

  /** Verifies the tab's next cumulative transaction offline and credits the increment. */
  async submit(tabId: string, xdr: unknown, onVerified?: () => void): Promise<{ receipt: Receipt; tab: TabInfo }> {
    const tab = await this.o.store.tab(tabId);
    if (!tab) throw new PaymentError('unknown_tab', `no tab ${tabId}`);
    if (tab.status !== 'open') throw new PaymentError('tab_closed', `tab ${tabId} is ${tab.status}; open a new tab`);
    const now = this.o.now();
    const v = verifyTabTransaction(xdr, this.terms(tab), this.o.passphrase, Math.floor(now / 1000));
    onVerified?.();
    const request = (await this.o.store.request(tab.requestId))!;
    const creditedBytes = this.bytesFor(v.amount);
    const receipt = await this.o.store.credit({
      request, operationId: `tab:${tab.id}:${v.amount}`, transactionHash: v.parsed.hash, from: tab.payer,
      amount: v.amount - tab.amount, creditBytes: creditedBytes - tab.creditedBytes, via: 'tab', createdAt: now,
      tab: { id: tab.id, amount: v.amount, creditedBytes, latestXdr: v.parsed.xdr, maxTime: v.maxTime },
    });
    const { visitorKey, ...rest } = request;
    this.o.onCredit({ receipt, request: { ...rest, status: 'paid' }, visitorKey });
    if (v.amount >= this.o.maxUnsettledStroops) this.kick();
    return { receipt, tab: this.info({ ...tab, amount: v.amount, creditedBytes, status: 'open' }) };
  }

  info(tab: TabRow): TabInfo {
    return {
      id: tab.id, requestId: tab.requestId, payer: tab.payer, account: this.bridge, sequence: tab.sequence.toString(),
      memoType: 'MEMO_HASH', memoHex: tab.memoHash, memo: Buffer.from(tab.memoHash, 'hex').toString('base64'),
      limit: tab.limitStroops.toString(), amount: tab.amount.toString(), maxFee: TAB_MAX_FEE_STROOPS.toString(),
      minRemainingSeconds: TAB_MIN_REMAINING_SECONDS, networkPassphrase: this.o.passphrase, status: tab.status,
    };
  }

  terms(tab: TabRow): TabTerms {
    return {
      bridge: this.bridge, sequence: tab.sequence, payer: tab.payer, memoHash: tab.memoHash, lastAmount: tab.amount,
      limit: tab.limitStroops, maxFee: TAB_MAX_FEE_STROOPS, minRemainingSeconds: TAB_MIN_REMAINING_SECONDS,
    };
  }

  /** Cumulative credit of a cumulative amount (floored: rounding never favours either side twice). */
  bytesFor(amount: bigint): number {
    const price = this.o.pricePerMibStroops > 0n ? this.o.pricePerMibStroops : 1n;
    return Number((amount * BigInt(MIB)) / price);
  }

  /** Runs a settlement pass soon; passes never overlap. Only while this bridge settles (started). */
  kick(): void {
    if (!this.timer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .then(() => (this.lastError = undefined))
      .catch((err: Error) => {
        this.lastError = err.message;
        this.o.log.warn(`tab settlement: ${err.message}; retrying`);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves when the current pass (if any) and any pass it asked for are done (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private isDue(t: TabRow, now: number): boolean {
    if (t.status !== 'open') return true; // settling (resubmit) or void (fill)
    if (t.amount === 0n) return now - t.openedAt >= (this.o.abandonAfterMs ?? Math.max(this.o.settleSeconds * 1000, 60_000));
    return now - (t.firstCreditAt ?? t.openedAt) >= this.o.settleSeconds * 1000
      || t.amount >= this.o.maxUnsettledStroops
      || (t.maxTime !== undefined && t.maxTime - SETTLE_MARGIN_SECONDS <= now / 1000);
  }

  /** One pass: settle or fill, in sequence order, every pending tab up to the last one that is due. */
  private async pass(): Promise<void> {
    const tabs = await this.o.store.pendingTabs();
    const now = this.o.now();
    let last = -1;
    tabs.forEach((t, i) => { if (this.isDue(t, now)) last = i; });
    if (last < 0) return;
    if (this.accountSeq === undefined) await this.reloadSequence();
    for (let i = 0; i <= last; i++) {
      const seq = this.accountSeq!;
      if (tabs[i]!.sequence <= seq) {
        await this.consumedElsewhere(await this.fresh(tabs[i]!));
        continue;
      }
      // A hole below this tab (numbers allocated but their rows gone, or the account moved): close it.
      if (tabs[i]!.sequence > seq + 1n) await this.fill(seq + 1n, tabs[i]!.sequence - 1n, []);
      // Re-read after every await: a credit may have raised the tab meanwhile, and the latest must go out.
      const t = await this.fresh(tabs[i]!);
      if (t.status === 'settling' || (t.status === 'open' && t.amount > 0n)) {
        await this.settleOne(t);
        continue;
      }
      // A run of consecutive empty tabs is closed by one filler. Each is closed ('void') before the filler
      // goes out, by an update that holds only while the tab is still empty: a credit that came first
      // keeps its tab (and ends the run there), and no credit can land on a tab being filled.
      const run: TabRow[] = [];
      for (let candidate: TabRow | undefined = t; candidate; ) {
        if (candidate.status === 'open' && !(await this.o.store.voidEmptyTab(candidate.id, 'abandoned: no transaction'))) break;
        run.push(candidate);
        const next: TabRow | undefined = i + 1 <= last ? await this.fresh(tabs[i + 1]!) : undefined;
        candidate = next && isEmpty(next) && next.sequence === candidate.sequence + 1n ? (i++, next) : undefined;
      }
      if (run.length === 0) continue; // credited meanwhile: the next pass settles it
      await this.fill(t.sequence, run[run.length - 1]!.sequence, run);
    }
  }

  private async fresh(t: TabRow): Promise<TabRow> {
    return (await this.o.store.tab(t.id)) ?? t;
  }

  /** Submits the tab's latest transaction, countersigned. The caller passes a row read just now (no await since). */
  private async settleOne(t: TabRow): Promise<void> {
    let tx: Transaction;
    if (t.status === 'settling' && t.settleXdr) {
      tx = TransactionBuilder.fromXDR(t.settleXdr, this.o.passphrase) as Transaction;
    } else {
      tx = TransactionBuilder.fromXDR(t.latestXdr!, this.o.passphrase) as Transaction;
      tx.sign(this.o.keypair);
      // Stored before the first submission: after a crash the very same envelope (same hash) goes out again.
      await this.o.store.updateTab(t.id, { status: 'settling', settleXdr: tx.toXDR() });
    }
    const hash = Buffer.from(tx.hash()).toString('hex');
    try {
      await this.o.horizon.submit(tx);
      this.accountSeq = t.sequence;
      await this.o.store.updateTab(t.id, { status: 'settled', settledHash: hash, closedAt: this.o.now() });
      this.o.log.info(`tab ${t.id} settled: ${formatXlm(t.amount)} XLM from ${t.payer} (transaction ${hash})`);
    } catch (err) {
      if (!(err instanceof SubmitRejected)) throw err;
      switch (err.txCode) {
        case 'tx_failed': // applied, and failed (op_underfunded…): the number is consumed, the money did not move
          this.accountSeq = t.sequence;
          await this.failed(t, `settlement failed on the ledger: ${err.opCodes.join(', ')}`, hash);
          return;
        case 'tx_bad_seq':
          this.accountSeq = undefined;
          throw new Error(`tab ${t.id}: the bridge account's sequence moved (tx_bad_seq); reloading it`);
        case 'tx_too_late':
        case 'tx_too_early':
          this.o.log.error(`tab ${t.id}: its transaction is outside its time bounds (${err.txCode}); ${formatXlm(t.amount)} XLM not collected`);
          await this.o.store.updateTab(t.id, { status: 'void', detail: err.txCode });
          return; // the number is still free: the next pass fills it
        case 'tx_bad_auth':
        case 'tx_no_source_account':
          await this.o.store.revokeTabCredit(t);
          this.o.onRevoke?.(t.sessionId);
          await this.o.store.updateTab(t.id, { status: 'void', detail: err.txCode });
          this.o.log.error(`tab ${t.id}: the payer's signature no longer authorizes the payment (${err.txCode}); credit revoked`);
          return;
        default:
          throw new Error(`tab ${t.id}: Horizon refused the settlement (${err.txCode}); will retry`);
      }
    }
  }

  private async failed(t: TabRow, detail: string, hash?: string): Promise<void> {
    await this.o.store.revokeTabCredit(t);
    this.o.onRevoke?.(t.sessionId);
    await this.o.store.updateTab(t.id, { status: 'failed', detail, closedAt: this.o.now(), ...(hash ? { settledHash: hash } : {}) });
    this.o.log.error(`tab ${t.id} from ${t.payer}: ${detail}; its ${formatXlm(t.amount)} XLM credit was revoked`);
  }

  /** Consumes sequence numbers from..to with one bumpSequence transaction of the bridge's own. */
  private async fill(from: bigint, to: bigint, tabs: TabRow[]): Promise<void> {
    const tx = new TransactionBuilder(new Account(this.bridge, (from - 1n).toString()), { fee: FILLER_FEE, networkPassphrase: this.o.passphrase })
      .addOperation(Operation.bumpSequence({ bumpTo: to.toString() }))
      .setTimeout(120)
      .build();
    tx.sign(this.o.keypair);
    try {
      await this.o.horizon.submit(tx);
    } catch (err) {
      if (err instanceof SubmitRejected && err.txCode === 'tx_bad_seq') this.accountSeq = undefined;
      throw err instanceof SubmitRejected ? new Error(`filling sequence numbers ${from}..${to}: ${err.message}`) : err;
    }
    this.accountSeq = to;
    for (const t of tabs) await this.o.store.updateTab(t.id, { status: 'filled', closedAt: this.o.now() });
    this.o.log.info(`filled sequence numbers ${from}..${to} of the bridge's account (${tabs.length} empty tab(s))`);
  }

  /** The account is already past this tab's number: find out what became of it. */
  private async consumedElsewhere(t: TabRow): Promise<void> {
    if (t.status === 'settling' && t.settleXdr) {
      const hash = Buffer.from(TransactionBuilder.fromXDR(t.settleXdr, this.o.passphrase).hash()).toString('hex');
      const found = await this.o.horizon.transaction(hash);
      if (found?.successful) {
        await this.o.store.updateTab(t.id, { status: 'settled', settledHash: hash, closedAt: this.o.now() });
        this.o.log.info(`tab ${t.id} settled: ${formatXlm(t.amount)} XLM (transaction ${hash}, found after a retry)`);
        return;
      }
      if (found) return this.failed(t, 'settlement failed on the ledger', hash);
    }
    if (isEmpty(t)) {
      await this.o.store.updateTab(t.id, { status: 'filled', closedAt: this.o.now() });
      return;
    }
    await this.o.store.updateTab(t.id, { status: 'lost', closedAt: this.o.now(), detail: 'sequence number consumed by another transaction' });
    this.o.log.error(`tab ${t.id}: sequence number ${t.sequence} was used by another transaction of the bridge's account; ` +
      `${formatXlm(t.amount)} XLM cannot be collected. Use an account dedicated to the bridge.`);
  }

  private async reloadSequence(): Promise<void> {
    const own = await this.o.horizon.account(this.bridge);
    if (!own) throw new HorizonUnavailable("Horizon does not know the bridge's account");
    this.accountSeq = own.sequence;
  }

  private noteSequence(seq: bigint): void {
    if (this.accountSeq === undefined || seq > this.accountSeq) this.accountSeq = seq;
  }
}

function isEmpty(t: TabRow): boolean {
  return t.status === 'void' || (t.status === 'open' && t.amount === 0n);
}
