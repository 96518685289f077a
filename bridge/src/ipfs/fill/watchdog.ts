// A deadline that moves: every sign of progress pushes it back. Aborting its signal with a PeerFault makes
// the HTTP client destroy the request or response with that error as the reason, so whatever is waiting on
// the peer (connect, headers, the next CAR chunk) fails at once with a message that says why.
import { PeerFault } from './errors.js';

export class Watchdog {
  /** Aborts when the parent aborts, after `stallMs` without poke(), or on close(). */
  readonly signal: AbortSignal;
  private readonly ac = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    parent: AbortSignal,
    private readonly stallMs: number,
    /** What we were waiting for, for the message ("fetching bafy… from x.onion"). */
    private readonly what: () => string,
  ) {
    this.signal = AbortSignal.any([parent, this.ac.signal]);
    this.poke();
  }

  /** Progress was made: the stall clock starts again. */
  poke(): void {
    if (this.ac.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.ac.abort(new PeerFault('stalled', `no progress for ${this.stallMs} ms while ${this.what()} (the peer or its Tor circuit is too slow)`));
    }, this.stallMs);
  }

  /** Stops the clock and aborts the signal, which closes a response body the caller stopped reading early. */
  close(): void {
    clearTimeout(this.timer);
    if (!this.ac.signal.aborted) this.ac.abort(new Error('finished'));
  }
}

/**
 * A signal for one peer's whole turn: aborts with the parent, or with a 'timeout' PeerFault after `ms`.
 * Call dispose() when the turn ends so the timer does not keep the process alive.
 */
export function peerDeadline(parent: AbortSignal | undefined, ms: number, peer: string): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new PeerFault('timeout', `${peer} did not finish within the per-peer deadline of ${ms} ms`)), ms);
  const signal = parent ? AbortSignal.any([parent, ac.signal]) : ac.signal;
  return { signal, dispose: () => clearTimeout(timer) };
}
