/**
 * One visitor's throttle: a token bucket shared by all of that visitor's connections, so opening
 * more streams does not buy more bandwidth. Tokens are bytes. `reserve` may drive the balance
 * negative (debt): concurrent streams then queue behind each other and the long-run rate is
 * exactly `rate`, whatever the chunk sizes.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    /** Bytes that may pass at once after an idle period. */
    readonly burst: number = Math.max(1024, Math.floor(rate / 4)),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes `n` bytes and returns how many milliseconds the caller must wait before sending them. */
  reserve(n: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }
}
