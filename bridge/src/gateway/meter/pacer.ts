// Erasable TypeScript only: the proxy workers load this straight from source under jest.

/** One request's view of its visitor's account, as the forwarder uses it on the hot path. */
export interface RequestMeter {
  /** Response headers that point at the payment request (and hand out the session token). */
  headers(): string[] | undefined;
  /** A 402 answer for a visitor that asked for one and must pay; undefined to forward. */
  paymentRequired(): { headers: Record<string, string>; body: string } | undefined;
  /** Whether the visitor is throttled right now. */
  throttled(): boolean;
  /** Counts bytes sent at full speed. */
  count(bytes: number): void;
  /** Counts bytes and returns the milliseconds to hold them (the visitor's shared token bucket). */
  reserve(bytes: number): number;
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
  private timer: NodeJS.Timeout | undefined;
  private unwake: (() => void) | undefined;
  private readonly m: RequestMeter;
  private readonly write: (b: Buffer) => void;
  private readonly setPaused: (paused: boolean) => void;
  private readonly onIdle: () => void;

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
    if (!this.timer) this.pump();
  }

  idle(): boolean {
    return this.queue.length === 0 && this.timer === undefined;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slice = this.queue[0]!;
      const wait = this.m.throttled() ? this.m.reserve(slice.length) : (this.m.count(slice.length), 0);
      if (wait > 0) {
        this.setPaused(true);
        const release = () => {
          this.cancel();
          this.queue.shift();
          this.write(slice);
          this.pump();
        };
        this.timer = setTimeout(release, wait);
        this.unwake = this.m.onRelease(release);
        return;
      }
      this.queue.shift();
      this.write(slice);
    }
    this.setPaused(false);
    this.onIdle();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unwake?.();
    this.unwake = undefined;
  }
}
