// meterBitswap on two real Helia nodes (libp2p over TCP on 127.0.0.1): bytes counted per peer, and a
// throttled peer paced per block at the bitswap stream, with its connection and pings unharmed.
import { randomBytes } from 'node:crypto';
import { unixfs } from '@helia/unixfs';
import { meterBitswap } from './bitswap-meter.js';
import { TestGate } from './test-support/gate.js';
import { connect, fetchEach, keepPinging, libp2pTimersDone, putRawBlocks, testNode, type TestNode } from './test-support/nodes.js';

const KIB = 1024;

describe('meterBitswap', () => {
  afterAll(libp2pTimersDone);
  let a: TestNode;
  let b: TestNode;
  let gateA: TestGate;
  let gateB: TestGate;
  let uninstall: Array<() => Promise<void>>;
  let A: string;
  let B: string;

  beforeEach(async () => {
    // b's receive timeout is short, so a design that left a stream idle while pacing would fail here.
    [a, b] = [await testNode(), await testNode({ messageReceiveTimeout: 800 })];
    gateA = new TestGate();
    gateB = new TestGate();
    uninstall = [meterBitswap(a.libp2p, gateA), meterBitswap(b.libp2p, gateB)];
    A = a.libp2p.peerId.toString();
    B = b.libp2p.peerId.toString();
    await connect(b, a);
  });
  afterEach(async () => {
    for (const u of uninstall) await u();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('counts the bytes sent and received per peer, within 1% of the payload', async () => {
    const size = 4 * 1024 * KIB;
    const cid = await unixfs(a).addBytes(randomBytes(size)); // random: no two blocks alike
    let n = 0;
    for await (const chunk of unixfs(b).cat(cid, { signal: AbortSignal.timeout(20_000) })) n += chunk.byteLength;
    expect(n).toBe(size);
    const sent = gateA.sentTo.get(B) ?? 0;
    const received = gateB.receivedFrom.get(A) ?? 0;
    process.stdout.write(`counted: payload ${size} B, sent ${sent} B (+${sent - size}), wantlists back ${gateB.sentTo.get(A)} B\n`);
    // The payload plus the unixfs root node and bitswap's framing.
    expect(sent).toBeGreaterThanOrEqual(size);
    expect(sent).toBeLessThan(size * 1.01);
    expect(received).toBe(sent);
    // The other way, only b's wantlists: small, but counted.
    expect(gateB.sentTo.get(A)).toBeGreaterThan(0);
    expect(gateB.sentTo.get(A)).toBeLessThan(10 * KIB);
    expect(gateA.receivedFrom.get(B)).toBe(gateB.sentTo.get(A));
    expect(gateA.addrs.get(B)).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
  });

  it('paces a throttled peer to its rate, block by block, and its connection and pings live on', async () => {
    const cids = await putRawBlocks(a, 16, 16 * KIB);
    const connection = a.libp2p.getConnections(b.libp2p.peerId)[0]!;
    gateA.throttle(B, 64 * KIB); // burst 16 KiB: the first block passes at once
    const pings = keepPinging(b, a);
    const t0 = performance.now();
    const got = await fetchEach(b, cids, AbortSignal.timeout(20_000));
    const secs = (performance.now() - t0) / 1000;
    const { ok, failed } = await pings.stop();
    process.stdout.write(`paced: 256 KiB in ${secs.toFixed(2)} s at 64 KiB/s; ${ok} pings ok, ${failed.length} failed\n`);
    expect(got).toBe(16 * 16 * KIB);
    // 240 KiB beyond the burst at 64 KiB/s: 3.75 s.
    expect(secs).toBeGreaterThan(3.75 * 0.9);
    expect(secs).toBeLessThan(3.75 * 1.3);
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThanOrEqual(8);
    expect(connection.status).toBe('open');
    expect(a.libp2p.getConnections(b.libp2p.peerId).map((c) => c.id)).toContain(connection.id);
    // Counted as they went out.
    expect(gateA.sentTo.get(B)).toBeGreaterThanOrEqual(16 * 16 * KIB);
  });

  it('splits a message of many blocks, so each block waits its turn on a stream of its own', async () => {
    const cids = await putRawBlocks(a, 4, 64 * KIB, 1);
    gateA.throttle(B, 64 * KIB, 1024);
    const arrived: number[] = [];
    const t0 = performance.now();
    // All four wanted at once: bitswap answers with one message holding all of them.
    await Promise.all(cids.map((cid) => fetchEach(b, [cid], AbortSignal.timeout(20_000)).then(() => arrived.push(performance.now() - t0))));
    arrived.sort((x, y) => x - y);
    process.stdout.write(`split: blocks arrived at ${arrived.map((t) => t.toFixed(0)).join(', ')} ms\n`);
    // ~1 s per block: each waits longer than b's 0.8 s receive timeout, which a stream left open meanwhile
    // would hit (the block then never arrives: bitswap does not resend).
    expect(arrived[0]!).toBeGreaterThan(700);
    expect(arrived[0]!).toBeLessThan(1600);
    expect(arrived[3]!).toBeGreaterThan(3600);
    expect(arrived[3]!).toBeLessThan(5500);
    expect(arrived[3]! - arrived[2]!).toBeGreaterThan(700);
  });

  it('applies a throttle that starts in the middle of a many-block message to the rest of it', async () => {
    const cids = await putRawBlocks(a, 4, 64 * KIB, 6);
    // Throttled once 100 KiB went out: the first block and part of the second are free.
    gateA.throttleAfter(B, 100 * KIB, 64 * KIB, 1024);
    const arrived: number[] = [];
    const t0 = performance.now();
    await Promise.all(cids.map((cid) => fetchEach(b, [cid], AbortSignal.timeout(20_000)).then(() => arrived.push(performance.now() - t0))));
    arrived.sort((x, y) => x - y);
    // Two blocks at once (the second crosses the allowance), then one a second: not one 256 KiB burst.
    expect(arrived[1]!).toBeLessThan(700);
    expect(arrived[2]!).toBeGreaterThan(700);
    expect(arrived[3]!).toBeGreaterThan(1700);
  });

  it("holds a block longer than the server's messageSendTimeout: bitswap's block sends carry no such deadline", async () => {
    const c = await testNode({ messageSendTimeout: 1000 });
    const gateC = new TestGate();
    const off = meterBitswap(c.libp2p, gateC);
    try {
      await connect(b, c);
      const cids = await putRawBlocks(c, 1, 32 * KIB, 5);
      gateC.throttle(B, 16 * KIB, 1024); // ~2 s for this block: twice c's send timeout
      const t0 = performance.now();
      await fetchEach(b, cids, AbortSignal.timeout(10_000));
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThan(1800);
      expect(ms).toBeLessThan(3500);
    } finally {
      await off();
      await c.stop();
    }
  });

  it('never holds a message without blocks: a throttled peer still gets our wantlist at once', async () => {
    const cids = await putRawBlocks(b, 2, 16 * KIB, 4);
    gateA.throttle(B, 10, 1); // 10 bytes/s: a held wantlist would take seconds
    const t0 = performance.now();
    await fetchEach(a, cids, AbortSignal.timeout(5_000));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(gateA.sentTo.get(B)).toBeGreaterThan(0); // the wantlists, counted
  });

  it('stops waiting the moment the throttle lifts', async () => {
    const cids = await putRawBlocks(a, 1, 64 * KIB, 2);
    gateA.throttle(B, 1024, 1024); // a minute for this block
    setTimeout(() => gateA.release(B), 500);
    const t0 = performance.now();
    await fetchEach(b, cids, AbortSignal.timeout(10_000));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(400);
    expect(ms).toBeLessThan(1500);
  });

  it('uninstalls: nothing is counted or paced any more', async () => {
    for (const u of uninstall.splice(0)) await u();
    gateA.throttle(B, 1024, 1024);
    const cids = await putRawBlocks(a, 2, 64 * KIB, 3);
    const t0 = performance.now();
    await fetchEach(b, cids, AbortSignal.timeout(10_000));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(gateA.sentTo.size).toBe(0);
    expect(gateB.receivedFrom.size).toBe(0);
  });
});
