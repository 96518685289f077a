// A PeerGate for testing bitswap metering alone: counts, and throttles peers on demand with the
// project's TokenBucket.
import { TokenBucket } from '../../../gateway/meter/token-bucket.js';
import type { PeerGate } from '../paced-stream.js';

export class TestGate implements PeerGate {
  readonly sentTo = new Map<string, number>();
  readonly receivedFrom = new Map<string, number>();
  readonly addrs = new Map<string, string>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly wakers = new Map<string, Set<() => void>>();
  /** Peers throttled as soon as they have been sent this many bytes (like the Meter with no grace). */
  private readonly allowances = new Map<string, { bytes: number; bytesPerSec: number; burst?: number }>();

  sent(peer: string, bytes: number, remoteAddr?: string): void {
    this.sentTo.set(peer, (this.sentTo.get(peer) ?? 0) + bytes);
    if (remoteAddr) this.addrs.set(peer, remoteAddr);
    const a = this.allowances.get(peer);
    if (a && this.sentTo.get(peer)! >= a.bytes && !this.buckets.has(peer)) this.throttle(peer, a.bytesPerSec, a.burst);
  }
  left(peer: string): number {
    const a = this.allowances.get(peer);
    return a ? Math.max(0, a.bytes - (this.sentTo.get(peer) ?? 0)) : Infinity;
  }
  /** Throttles `peer` to `bytesPerSec` once it has been sent `bytes`. */
  throttleAfter(peer: string, bytes: number, bytesPerSec: number, burst?: number): void {
    this.allowances.set(peer, { bytes, bytesPerSec, burst });
  }
  received(peer: string, bytes: number): void {
    this.receivedFrom.set(peer, (this.receivedFrom.get(peer) ?? 0) + bytes);
  }
  throttled(peer: string): boolean {
    return this.buckets.has(peer);
  }
  reserve(peer: string, bytes: number): number {
    return this.buckets.get(peer)?.reserve(bytes) ?? 0;
  }
  onRelease(peer: string, wake: () => void): () => void {
    let set = this.wakers.get(peer);
    if (!set) this.wakers.set(peer, (set = new Set()));
    set.add(wake);
    return () => set.delete(wake);
  }

  throttle(peer: string, bytesPerSec: number, burst?: number): void {
    this.buckets.set(peer, new TokenBucket(bytesPerSec, burst));
  }
  release(peer: string): void {
    this.buckets.delete(peer);
    for (const wake of [...(this.wakers.get(peer) ?? [])]) wake();
  }
}
