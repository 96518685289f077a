// Peers metered like the gateway's visitors: the same Meter (free allowance, payment request, grace,
// per-account TokenBucket, lifted at once by "payment complete"), keyed `peer:<peerId>` and billed as
// service 'ipfs'. On top of it, what the Meter does not keep: bytes in both directions, the remote
// address, and what each peer was asked and paid, for the admin view; and a 'request' event when a
// peer has a new payment request to be sent to it over /torplus/payment/1.0.0.
import { EventEmitter } from 'node:events';
import { Meter, type Account, type PaymentPort } from '../../gateway/meter/meter.js';
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import type { PeerGate } from './paced-stream.js';
import type { OfferOutcome } from './payment-protocol.js';

export interface PeerMeterOptions {
  /** Bytes a peer gets over bitswap before it is asked to pay (IPFS_FREE_BYTES). */
  freeBytes: number;
  /** Seconds a peer has to pay before it is throttled (GRACE_SECONDS). */
  graceSeconds: number;
  /** The rate of an unpaid peer past grace (IPFS_THROTTLE_BYTES_PER_SEC). */
  throttleBytesPerSec: number;
  /** peerPaymentPort(payments); undefined (no seed): peers are counted, never asked to pay. */
  payments: PaymentPort | undefined;
  /** A declined or failed offer of a still open request is made again after this long. Default 60 s. */
  reofferMs?: number;
  onError?: (err: Error) => void;
  now?: () => number;
}

/** What is known of one peer, in both directions. */
export interface PeerAccounting {
  peerId: string;
  /** The address it was last seen at on bitswap. */
  lastAddr: string | undefined;
  bytesSent: number;
  bytesReceived: number;
  /** Payment requests made of it: id → amount (stroops). */
  requests: Map<string, bigint>;
  paidStroops: bigint;
  lastOffer: { requestId: string; at: number; outcome: OfferOutcome | undefined } | undefined;
  /** Its Meter account, once it was sent anything (cached: looking it up would keep it from expiring). */
  account: Account | undefined;
}

export interface PeerMeterEvents {
  /** A payment request to send to `peer` (new, or offered again after a decline). */
  request: [{ peer: string; request: PaymentRequest }];
}

export class PeerMeter extends EventEmitter<PeerMeterEvents> implements PeerGate {
  readonly meter: Meter;
  private readonly o: PeerMeterOptions;
  private readonly now: () => number;
  private readonly peers = new Map<string, PeerAccounting>();
  /** Session id → peer id: a payment names the session, the peer is what is shown. */
  private readonly sessions = new Map<string, string>();

  constructor(o: PeerMeterOptions) {
    super();
    this.o = o;
    this.now = o.now ?? Date.now;
    this.meter = new Meter({
      freeBytes: o.freeBytes,
      graceSeconds: o.graceSeconds,
      throttleBytesPerSec: o.throttleBytesPerSec,
      service: 'ipfs',
      payments: o.payments,
      ...(o.onError ? { onError: o.onError } : {}),
      ...(o.now ? { now: o.now } : {}),
    });
    this.meter.onChange((a, formerKey) => this.changed(a, formerKey));
  }

  /** The free allowance of a peer not seen yet. */
  get freeBytes(): number {
    return this.o.freeBytes;
  }

  /** Bitswap bytes `peer` sent this node (0 for a peer never seen). */
  receivedFrom(peer: string): number {
    return this.peers.get(peer)?.bytesReceived ?? 0;
  }

  // --- PeerGate (bitswap streams) -------------------------------------------------------------

  sent(peer: string, bytes: number, remoteAddr?: string): void {
    const p = this.peer(peer, remoteAddr);
    p.bytesSent += bytes;
    const a = this.accountOf(p);
    this.meter.record(a, bytes);
    this.maybeReoffer(p, a);
  }

  received(peer: string, bytes: number, remoteAddr?: string): void {
    this.peer(peer, remoteAddr).bytesReceived += bytes;
  }

  throttled(peer: string): boolean {
    return this.peers.get(peer)?.account?.throttled ?? false;
  }

  left(peer: string): number {
    const p = this.peers.get(peer);
    return p ? this.meter.left(this.accountOf(p)!) : this.meter.left(this.meter.account(`peer:${peer}`));
  }

  reserve(peer: string, bytes: number): number {
    const a = this.peers.get(peer)?.account;
    return a?.throttled && a.bucket ? a.bucket.reserve(bytes) : 0;
  }

  onRelease(peer: string, wake: () => void): () => void {
    const a = this.peers.get(peer)?.account;
    return a ? this.meter.onRelease(a, wake) : () => {};
  }

  // --- payments -------------------------------------------------------------------------------

  /** Feed PaymentsService 'complete' events here: an 'ipfs' payment of a peer's session unthrottles it. */
  paymentComplete(e: PaymentComplete): void {
    if (e.request.service !== 'ipfs') return;
    const peer = this.sessions.get(e.request.sessionId);
    if (!peer) return; // another node's session, or from before a restart: not one of ours
    const p = this.peer(peer);
    p.paidStroops += e.receipt.amount;
    this.meter.paymentComplete(e);
  }

  /** The outcome of offering `requestId` to `peer` (the billing side reports it). */
  offered(peer: string, requestId: string, outcome: OfferOutcome): void {
    const p = this.peer(peer);
    p.lastOffer = { requestId, at: this.now(), outcome };
  }

  /** Everything known of every peer seen (copies). */
  accounting(): PeerAccounting[] {
    return [...this.peers.values()].map((p) => ({ ...p, requests: new Map(p.requests) }));
  }

  /** The account of a peer, for tests and the admin view; undefined if it was never sent anything. */
  accountOf(p: PeerAccounting): Account;
  accountOf(peer: string): Account | undefined;
  accountOf(p: PeerAccounting | string): Account | undefined {
    if (typeof p === 'string') return this.peers.get(p)?.account;
    // account() follows the peer's alias to its session once it has one, so this is the same object
    // after a payment request; it is looked up again each time in case the Meter swept an idle one.
    p.account = this.meter.account(`peer:${p.peerId}`);
    return p.account;
  }

  close(): void {
    this.meter.close();
    this.removeAllListeners();
  }

  private peer(peerId: string, addr?: string): PeerAccounting {
    let p = this.peers.get(peerId);
    if (!p) {
      p = { peerId, lastAddr: addr, bytesSent: 0, bytesReceived: 0, requests: new Map(), paidStroops: 0n, lastOffer: undefined, account: undefined };
      this.peers.set(peerId, p);
    } else if (addr) p.lastAddr = addr;
    return p;
  }

  /** A Meter change: a request made (send it to the peer), a throttle set or lifted. */
  private changed(a: Account, formerKey: string | undefined): void {
    const keyPeer = (k: string | undefined) => (k?.startsWith('peer:') ? k.slice(5) : undefined);
    const peer = keyPeer(formerKey) ?? keyPeer(a.key) ?? (a.sessionId ? this.sessions.get(a.sessionId) : undefined);
    if (!peer) return;
    if (a.sessionId) this.sessions.set(a.sessionId, peer);
    const p = this.peer(peer);
    p.account = a;
    const request = this.meter.request(a);
    if (request && !p.requests.has(request.id)) {
      p.requests.set(request.id, request.amount);
      this.offer(p, request);
    }
  }

  /** A throttled peer whose offer was declined or failed is asked again after a while (it may pay now). */
  private maybeReoffer(p: PeerAccounting, a: Account): void {
    const last = p.lastOffer;
    if (!last?.outcome || last.outcome.status === 'paid') return;
    if (this.now() - last.at < (this.o.reofferMs ?? 60_000)) return;
    const request = this.meter.request(a);
    if (request) this.offer(p, request);
  }

  private offer(p: PeerAccounting, request: PaymentRequest): void {
    p.lastOffer = { requestId: request.id, at: this.now(), outcome: undefined };
    this.emit('request', { peer: p.peerId, request });
  }
}
