import { Transform, type TransformCallback } from 'node:stream';
import type { TokenBucket } from './token-bucket.js';

export interface MeterHooks {
  /** Counts bytes as they leave for the visitor. */
  record(bytes: number): void;
  /** The visitor's bucket while throttled, undefined at full speed. Asked for every slice. */
  bucket(): TokenBucket | undefined;
  /** Registers a wake-up for when the throttle lifts; returns the unregister function. */
  onRelease(wake: () => void): () => void;
}

/** Throttled slices are small, so a visitor's rate is smooth and a lifted throttle acts at once. */
const SLICE = 16 * 1024;

/**
 * Sits between the upstream response and the visitor's socket. At full speed it only counts;
 * throttled, it holds each slice until the visitor's bucket allows it. Holding the callback is the
 * backpressure: the upstream is paused, nothing piles up in memory.
 */
export class MeteredStream extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private unwake: (() => void) | undefined;

  constructor(private readonly hooks: MeterHooks) {
    super({ highWaterMark: SLICE });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.hooks.bucket()) {
      this.hooks.record(chunk.length);
      return done(null, chunk);
    }
    this.sendSlices(chunk, 0, done);
  }

  private sendSlices(chunk: Buffer, offset: number, done: TransformCallback): void {
    while (offset < chunk.length) {
      const bucket = this.hooks.bucket();
      const slice = bucket ? chunk.subarray(offset, offset + SLICE) : chunk.subarray(offset);
      const wait = bucket ? bucket.reserve(slice.length) : 0;
      const send = () => {
        this.hooks.record(slice.length);
        this.push(slice);
      };
      if (wait <= 0) {
        send();
        offset += slice.length;
        continue;
      }
      const next = offset + slice.length;
      const resume = () => {
        this.clearWait();
        send();
        this.sendSlices(chunk, next, done);
      };
      this.timer = setTimeout(resume, wait);
      // Payment complete: stop waiting at once.
      this.unwake = this.hooks.onRelease(resume);
      return;
    }
    done();
  }

  private clearWait(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unwake?.();
    this.unwake = undefined;
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.clearWait();
    cb(err);
  }
}
