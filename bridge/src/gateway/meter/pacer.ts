// Erasable TypeScript only: the proxy workers load this straight from source under jest.

/** One request's view of its visitor's account, as the forwarder uses it on the hot path. */
export interface RequestMeter {
  /**
   * True when the meter does not know the visitor's standing yet (a proxy worker asks its primary,
   * once per visitor): the forwarder then waits for `ready` before it answers or forwards.
   */
  pending?(ready: () => void): boolean;
  /** Response headers that point at the payment request (and hand out the session token). */
  headers(): string[] | undefined;
  /**
   * A 402 answer instead of the site: JSON for a client that asked for one (Accept-Payment) and must
   * pay, or the pay page for a throttled visitor's navigation (PAYWALL=page); undefined to forward.
   */
  paymentRequired(): { headers: Record<string, string>; body: string } | undefined;
  /** Whether the visitor is throttled right now. */
  throttled(): boolean;
  /** Counts bytes sent at full speed. */
  count(bytes: number): void;
  /**
   * Counts bytes and returns the milliseconds to hold them (the visitor's shared token bucket), or a
   * promise of them when that bucket is in another process.
   */
  reserve(bytes: number): number | Promise<number>;
  /** Calls `wake` once when the throttle lifts (payment complete); returns the unregister function. */
  onRelease(wake: () => void): () => void;
}

/** Throttled slices are small, so the rate is smooth and a lifted throttle acts at once. */
const SLICE = 16 * 1024;

/**
 * Paces a response's body for its visitor. At full speed it only counts. Throttled, it queues the
 * body in slices, releases each when the bucket allows, and pauses the upstream meanwhile: that
 * pause is the backpressure, so nothing piles up beyond what the upstream already sent.
 */
export class Pacer {
  private readonly queue: Buffer[] = [];
  /** The head slice is held: for the bucket's answer, or for the time it named. */
  private holding = false;
  private timer: NodeJS.Timeout | undefined;
  private unwake: (() => void) | undefined;
  /** Bumped by cancel(), so an answer to a reservation made before is ignored. */
  private turn = 0;
  private readonly m: RequestMeter;
  private readonly write: (b: Buffer) => void;
  private readonly setPaused: (paused: boolean) => void;
  private readonly onIdle: () => void;
  /** Sends the held head slice and goes on: the bucket's time is up, or the throttle lifted. */
  private readonly release = (): void => {
    this.cancel();
    const slice = this.queue.shift();
    if (slice) this.write(slice);
    this.pump();
  };

  constructor(m: RequestMeter, write: (b: Buffer) => void, setPaused: (paused: boolean) => void, onIdle: () => void) {
    this.m = m;
    this.write = write;
    this.setPaused = setPaused;
    this.onIdle = onIdle;
  }

  push(chunk: Buffer): void {
    if (this.queue.length === 0 && !this.m.throttled()) {
      this.m.count(chunk.length);
      this.write(chunk);
      return;
    }
    for (let i = 0; i < chunk.length; i += SLICE) this.queue.push(chunk.subarray(i, i + SLICE));
    if (!this.holding) this.pump();
  }

  idle(): boolean {
    return this.queue.length === 0 && !this.holding;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slice = this.queue[0]!;
      if (!this.m.throttled()) {
        this.m.count(slice.length);
        this.queue.shift();
        this.write(slice);
        continue;
      }
      const wait = this.m.reserve(slice.length);
      if (typeof wait === 'number' && wait <= 0) {
        this.queue.shift();
        this.write(slice);
        continue;
      }
      this.holding = true;
      this.setPaused(true);
      this.unwake = this.m.onRelease(this.release);
      if (typeof wait === 'number') {
        this.timer = setTimeout(this.release, wait);
      } else {
        const turn = this.turn;
        wait.then(
          (ms) => {
            if (turn !== this.turn) return;
            if (ms > 0) this.timer = setTimeout(this.release, ms);
            else this.release();
          },
          () => turn === this.turn && this.release(),
        );
      }
      return;
    }
    this.setPaused(false);
    this.onIdle();
  }

  cancel(): void {
    this.turn++;
    this.holding = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unwake?.();
    this.unwake = undefined;
  }
}
