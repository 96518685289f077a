// The paying side of /torplus/payment/1.0.0: answers a peer's payment request with a signed classic
// payment (client/payer.ts buildChainPayment), within a budget (FILL_MAX_SPEND), and only when the
// request looks sane. The peer that asked submits the transaction itself; this side never submits.
//
// THE BUDGET counts what can be charged: every signed transaction counts when it leaves the process,
// whatever the peer then does with it (it may submit it late, or twice: a signed transaction is valid
// until its time bound, and only its sequence number keeps it from executing twice). `paid` counts
// what peers confirmed. Payments are made one at a time: each is built on the account's current
// sequence number, so the next waits until the previous one is settled.
import { Keypair, StrKey } from '@stellar/stellar-sdk';
import { formatXlm } from '../../config/amount.js';
import { PaymentRequestSchema, type PaymentRequestInfo } from '../../client/bridge-api.js';
import { buildChainPayment } from '../../client/payer.js';
import type { HorizonApi } from '../../payments/horizon.js';
import type { PaymentAnswer, PaymentSettlement } from './payment-protocol.js';

const MIB = 1024n * 1024n;

export interface PeerPayerOptions {
  /** The payer's key; undefined (no seed configured): every request is declined. */
  keypair: Keypair | undefined;
  /** The payer's own Horizon: its network passphrase and the account's sequence number. */
  ledger: Pick<HorizonApi, 'url' | 'networkPassphrase' | 'account'>;
  /** The most all payments together may cost (FILL_MAX_SPEND), until resetBudget(). */
  maxSpendStroops: bigint;
  /** The most one request may ask. Default: no limit but the budget. */
  maxRequestStroops?: bigint;
  /** Requests dearer than this per MiB of credit are declined. Default: no limit. */
  maxPricePerMibStroops?: bigint;
  /** Whether `peer` may be paid at all (e.g. only peers this node fetches from): true, or why not. */
  mayPay?: (peer: string) => true | string;
  /** Fee bid of each payment (stroops). Default 1000 (the network charges its base fee, usually 100). */
  feeStroops?: bigint;
  /** Validity of each payment transaction. Default 180 s. */
  txTimeoutSeconds?: number;
  /** A payment whose outcome never arrives frees the next one after this long. Default 180 s. */
  settleTimeoutMs?: number;
  now?: () => number;
}

/** What this node did for one peer's requests. Stroops. */
export interface PayerPeerRecord {
  /** What it asked (requests received). */
  askedStroops: bigint;
  /** Signed and handed over (counted against the budget). */
  sentStroops: bigint;
  /** Confirmed by the peer's receipt. */
  paidStroops: bigint;
  /** Why the last request was declined, if it was. */
  lastDecline: string | undefined;
}

export class PeerPayer {
  private readonly o: PeerPayerOptions;
  private readonly now: () => number;
  private maxSpend: bigint;
  private spent = 0n;
  private paid = 0n;
  private passphrase: string | undefined;
  private turn: Promise<void> = Promise.resolve();
  private readonly peers = new Map<string, PayerPeerRecord>();

  constructor(o: PeerPayerOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.maxSpend = o.maxSpendStroops;
  }

  get spentStroops(): bigint {
    return this.spent;
  }
  get paidStroops(): bigint {
    return this.paid;
  }
  get leftStroops(): bigint {
    return this.maxSpend > this.spent ? this.maxSpend - this.spent : 0n;
  }

  /** A new budget (e.g. per fill run); what was spent before no longer counts. */
  resetBudget(maxSpendStroops: bigint = this.o.maxSpendStroops): void {
    this.maxSpend = maxSpendStroops;
    this.spent = 0n;
  }

  /** Per peer, what it asked and what this node paid it (copies). */
  records(): Map<string, PayerPeerRecord> {
    return new Map([...this.peers].map(([k, v]) => [k, { ...v }]));
  }

  /** The paying side's handler for paymentProtocol(): a signed payment, or a decline saying why. */
  async answer(peer: string, raw: Record<string, unknown>, signal: AbortSignal): Promise<PaymentAnswer> {
    const rec = this.record(peer);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const previous = this.turn;
    this.turn = previous.then(() => mine);
    try {
      await raceAbort(previous, signal);
      const decided = await this.decide(peer, raw, rec, signal);
      if ('decline' in decided) {
        rec.lastDecline = decided.decline;
        release();
        return decided;
      }
      // Holds the turn until the peer says how it ended (or it never does).
      const timer = setTimeout(release, this.o.settleTimeoutMs ?? 180_000);
      timer.unref();
      return {
        xdr: decided.xdr,
        settled: (s: PaymentSettlement) => {
          if (s.paid) {
            rec.paidStroops += s.amountStroops;
            this.paid += s.amountStroops;
          }
          clearTimeout(timer);
          release();
        },
      };
    } catch (err) {
      release();
      const decline = `could not pay: ${(err as Error).message}`;
      rec.lastDecline = decline;
      return { decline };
    }
  }

  private async decide(peer: string, raw: Record<string, unknown>, rec: PayerPeerRecord, signal: AbortSignal): Promise<{ xdr: string } | { decline: string }> {
    const keypair = this.o.keypair;
    if (!keypair) return { decline: 'this node has no Stellar seed configured, so it does not pay peers (set SEED or SEED_FILE to pay)' };
    const allowed = this.o.mayPay?.(peer) ?? true;
    if (allowed !== true) return { decline: allowed };
    const parsed = PaymentRequestSchema.safeParse(raw);
    if (!parsed.success) return { decline: `malformed payment request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    const r: PaymentRequestInfo = parsed.data;
    rec.askedStroops += r.amountStroops;
    if (raw.service !== undefined && raw.service !== 'ipfs') return { decline: `only requests for 'ipfs' are paid here, not '${String(raw.service)}'` };
    if (r.status !== undefined && r.status !== 'open') return { decline: `payment request ${r.id} is ${r.status}` };
    if (r.expiresAt !== undefined && r.expiresAt <= this.now()) return { decline: `payment request ${r.id} has expired` };
    const passphrase = await this.networkPassphrase(signal);
    if (r.networkPassphrase !== passphrase) {
      return { decline: `the request is for the network "${r.networkPassphrase}", but this node pays on "${passphrase}" (${this.o.ledger.url})` };
    }
    if (!StrKey.isValidEd25519PublicKey(r.destination) || r.destination === keypair.publicKey()) {
      return { decline: `the request names no account to pay but this node's own or an invalid one (${r.destination})` };
    }
    const maxOne = this.o.maxRequestStroops;
    if (maxOne !== undefined && r.amountStroops > maxOne) return { decline: `asks ${xlm(r.amountStroops)} XLM, more than one payment to a peer may be (${xlm(maxOne)} XLM)` };
    const maxPrice = this.o.maxPricePerMibStroops;
    if (maxPrice !== undefined) {
      if (!r.creditBytes) return { decline: 'the request does not say how many bytes it buys' };
      const price = (r.amountStroops * MIB) / BigInt(r.creditBytes);
      if (price > maxPrice) return { decline: `asks ${xlm(price)} XLM per MiB, more than the ${xlm(maxPrice)} XLM this node pays` };
    }
    if (r.amountStroops > this.leftStroops) {
      return { decline: `over budget: asks ${xlm(r.amountStroops)} XLM, ${xlm(this.leftStroops)} XLM of FILL_MAX_SPEND ${xlm(this.maxSpend)} XLM left` };
    }
    const account = await this.o.ledger.account(keypair.publicKey(), signal);
    if (!account) return { decline: `this node's account ${keypair.publicKey()} does not exist on the network: fund it to pay peers` };
    const tx = buildChainPayment(r, keypair, account.sequence, passphrase, {
      ...(this.o.feeStroops !== undefined ? { feeStroops: this.o.feeStroops } : {}),
      ...(this.o.txTimeoutSeconds !== undefined ? { timeoutSeconds: this.o.txTimeoutSeconds } : {}),
    });
    this.spent += r.amountStroops;
    rec.sentStroops += r.amountStroops;
    rec.lastDecline = undefined;
    return { xdr: tx.toXDR() };
  }

  private async networkPassphrase(signal: AbortSignal): Promise<string> {
    this.passphrase ??= await this.o.ledger.networkPassphrase(signal);
    return this.passphrase;
  }

  private record(peer: string): PayerPeerRecord {
    let r = this.peers.get(peer);
    if (!r) {
      r = { askedStroops: 0n, sentStroops: 0n, paidStroops: 0n, lastDecline: undefined };
      this.peers.set(peer, r);
    }
    return r;
  }
}

/** 0.0010000 → 0.001 */
function xlm(stroops: bigint): string {
  return formatXlm(stroops).replace(/\.?0+$/, '') || '0';
}

function raceAbort(p: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('timed out waiting for an earlier payment to settle'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
