import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MeteredStream, type MeterHooks } from './metered-stream.js';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('lets the burst through, then makes callers wait exactly for the missing bytes', () => {
    let t = 0;
    const b = new TokenBucket(1000, 500, () => t);
    expect(b.reserve(500)).toBe(0);
    expect(b.reserve(250)).toBeCloseTo(250);
    t = 500; // 500 bytes of tokens arrive; 250 were owed
    expect(b.reserve(250)).toBe(0);
    expect(b.reserve(1)).toBeCloseTo(1);
  });

  it('never stores more than the burst while idle', () => {
    let t = 0;
    const b = new TokenBucket(1000, 100, () => t);
    t = 60_000;
    expect(b.reserve(100)).toBe(0);
    expect(b.reserve(100)).toBeCloseTo(100);
  });
});

function hooks(bucket: () => TokenBucket | undefined): MeterHooks & { bytes: number; release(): void } {
  const wakers = new Set<() => void>();
  const h = {
    bytes: 0,
    record: (n: number) => void (h.bytes += n),
    bucket,
    onRelease: (w: () => void) => (wakers.add(w), () => wakers.delete(w)),
    release: () => [...wakers].forEach((w) => w()),
  };
  return h;
}

async function drain(streams: Readable[]): Promise<number> {
  let n = 0;
  await Promise.all(streams.map((s) => pipeline(s, new Writable({ write: (c: Buffer, _e, cb) => ((n += c.length), cb()) }))));
  return n;
}

describe('MeteredStream', () => {
  it('counts every byte and passes data unchanged at full speed', async () => {
    const h = hooks(() => undefined);
    const data = Buffer.from('x'.repeat(100_000));
    const out: Buffer[] = [];
    await pipeline(Readable.from([data]), new MeteredStream(h), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(h.bytes).toBe(100_000);
  });

  it('holds one visitor to the configured rate across concurrent streams (±20%)', async () => {
    const rate = 256 * 1024;
    const bucket = new TokenBucket(rate, 16 * 1024);
    const h = hooks(() => bucket);
    const size = 96 * 1024;
    const started = performance.now();
    const n = await drain([0, 1, 2].map(() => Readable.from([Buffer.alloc(size)]).pipe(new MeteredStream(h))));
    const seconds = (performance.now() - started) / 1000;
    expect(n).toBe(3 * size);
    const measured = (3 * size - 16 * 1024) / seconds; // the burst passes at once
    expect(measured).toBeGreaterThan(rate * 0.8);
    expect(measured).toBeLessThan(rate * 1.2);
  });

  it('speeds up at once when the throttle lifts mid-stream', async () => {
    let throttled = true;
    const bucket = new TokenBucket(16 * 1024, 1024);
    const h = hooks(() => (throttled ? bucket : undefined));
    const src = new PassThrough();
    const metered = src.pipe(new MeteredStream(h));
    const done = drain([metered]);
    src.end(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.bytes).toBeLessThan(64 * 1024);
    const liftedAt = performance.now();
    throttled = false;
    h.release();
    await done;
    expect(h.bytes).toBe(1024 * 1024);
    expect(performance.now() - liftedAt).toBeLessThan(200);
  });
});
