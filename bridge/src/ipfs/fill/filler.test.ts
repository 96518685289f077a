import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Helia } from '@helia/interface';
import { unixfs } from '@helia/unixfs';
import Database from 'better-sqlite3';
import type { CID } from 'multiformats/cid';
import { StorageLock } from '../storage-lock.js';
import { verifyBlock } from '../verify-block.js';
import { Filler, type FillerOptions } from './filler.js';
import { formatBytes } from './format.js';
import { formatFillSummary, type FillProgress } from './report.js';
import {
  addFile,
  bytesOf,
  captureLog,
  carOf,
  closedPort,
  memoryHelia,
  onion,
  startPeer,
  topEntry,
  varint,
  type CarReply,
  type FakePeer,
  type TestDag,
} from './test-support/fixtures.js';
import { httpPeerClient } from './peer-client.js';
import { until } from '../../../test/support/wait.js';
import { pinStoreFillStorage, type FillStorage } from './storage.js';
import { listedStoredBlocks, PinStore } from '../pins.js';
import { heliaBlocks } from '../blocks.js';

const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(onion) as [string, string, string, string, string];

/** The bridge under test: its own Helia node, lock, storage and SQLite file. */
interface Local {
  helia: Helia;
  storage: FillStorage;
  pins: PinStore;
  /** Every block fill wrote, with the bytes it wrote. */
  puts: Array<{ cid: CID; bytes: Uint8Array }>;
  db: Database.Database;
  log: ReturnType<typeof captureLog>['log'];
  lines: string[];
}

describe('Filler', () => {
  let source: Helia; // the peers' content
  let dir: string;
  const locals: Local[] = [];
  const servers: FakePeer[] = [];
  const ports = new Map<string, number>();
  const peers = httpPeerClient({ transport: { direct: true }, urlFor: (peer) => `http://127.0.0.1:${ports.get(peer)}`, timeoutMs: 2000 });
  let seed = 100;
  const newDag = (length = 5000, chunk = 1000): Promise<TestDag> => addFile(source, bytesOf(length, seed++), chunk);

  beforeAll(async () => {
    source = await memoryHelia();
    dir = mkdtempSync(join(tmpdir(), 'fill-test-'));
  });
  afterAll(async () => {
    await source.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const l of locals.splice(0)) {
      l.db.close();
      await l.helia.stop();
    }
  });

  async function local(): Promise<Local> {
    const helia = await memoryHelia();
    const db = new Database(join(dir, `fill-${seed++}.sqlite`));
    db.pragma('journal_mode = WAL');
    const { log, lines } = captureLog();
    const pins = new PinStore(db, heliaBlocks(helia), listedStoredBlocks(helia.blockstore));
    const storage = pinStoreFillStorage(pins, heliaBlocks(helia), new StorageLock());
    const puts: Local['puts'] = [];
    const blocks = { ...storage.blocks, put: (cid: CID, bytes: Uint8Array, o?: { signal?: AbortSignal }) => (puts.push({ cid, bytes }), storage.blocks.put(cid, bytes, o)) };
    const l = { helia, pins, storage: { ...storage, blocks }, puts, db, log, lines };
    locals.push(l);
    return l;
  }

  function filler(l: Local, over: Partial<FillerOptions> = {}): Filler {
    return new Filler({ storage: l.storage, db: l.db, peers, reserveBytes: 1 << 20, topN: 10, log: l.log, stallMs: 2000, peerTimeoutMs: 10_000, ...over });
  }

  /** A peer serving `dags` (with their counts) in its top list and, unless told otherwise, correct CARs. */
  async function peer(name: string, dags: Array<[TestDag, number]>, cars: Record<string, CarReply> = {}, top?: unknown): Promise<FakePeer> {
    const all: Record<string, CarReply> = {};
    for (const [d] of dags) all[d.root.toString()] = { car: await carOf([d.root], d.blocks), chunk: 700 };
    const p = await startPeer({ top: top ?? { top: dags.map(([d, n]) => topEntry(d, n)) }, cars: { ...all, ...cars } });
    ports.set(name, p.port);
    servers.push(p);
    return p;
  }

  async function present(l: Local, cids: CID[]): Promise<boolean[]> {
    return Promise.all(cids.map((c) => l.storage.blocks.has(c)));
  }
  const cidsOf = (d: TestDag): CID[] => d.blocks.map((b) => b.cid);
  const carRequests = (p: FakePeer): number => p.requests.filter((r) => r.startsWith('/ipfs/')).length;

  /** The bridge's own content: pinned by the bridge, never in fill's table. */
  async function own(l: Local, content: Uint8Array): Promise<TestDag> {
    const d = await addFile(l.helia, content, 1000);
    await l.pins.pin(d.root, 'own');
    return d;
  }

  it('fills a peer\'s top DAGs, verified and pinned as filled, and remembers them across restarts', async () => {
    const l = await local();
    const mine = await own(l, bytesOf(2000, 1));
    const [d1, d2] = [await newDag(5000), await newDag(2500)];
    // The peer also lists content this bridge already has: it must not be fetched.
    const mirror = await addFile(source, mine.content, 1000);
    const p = await peer(A, [[d1, 5], [d2, 3], [mirror, 2]]);

    const summary = await filler(l).fill([A]);
    expect(summary.peers).toEqual([
      expect.objectContaining({ peer: A, status: 'ok', dags: 2, bytes: d1.bytes + d2.bytes, blocks: d1.blocks.length + d2.blocks.length, evicted: 0, notes: [] }),
    ]);
    expect(summary.dags).toBe(2);
    expect(p.requests).toEqual([`/v1/ipfs/top?n=10`, `/ipfs/${d1.root}?format=car&dag-scope=all`, `/ipfs/${d2.root}?format=car&dag-scope=all`]);
    expect(await present(l, [...cidsOf(d1), ...cidsOf(d2)])).not.toContain(false);
    for (const d of [d1, d2]) {
      expect(await l.storage.pinMetadata(d.root, {})).toEqual({ kind: 'filled', peer: A, filledAt: expect.any(Number) });
      // What the bridge's gateway would serve: the file, read back from this node alone.
      const chunks: Uint8Array[] = [];
      for await (const c of unixfs(l.helia).cat(d.root, { offline: true })) chunks.push(c);
      expect(Buffer.concat(chunks).equals(Buffer.from(d.content))).toBe(true);
    }

    const records = filler(l).filled();
    expect(records.map((r) => [r.cid.toString(), r.peer, r.bytes, r.blocks, r.score])).toEqual([
      [d1.root.toString(), A, d1.bytes, d1.blocks.length, 5],
      [d2.root.toString(), A, d2.bytes, d2.blocks.length, 3],
    ]);
    // A new Filler on the same database (a restart) knows what it filled and does not fetch it again.
    const again = filler(l);
    expect(again.usedBytes()).toBe(d1.bytes + d2.bytes);
    const second = await again.fill([A]);
    expect(second.dags).toBe(0);
    expect(carRequests(p)).toBe(2);
    // Another peer's visitors want d2 more: its record takes the higher score (it is worth more now).
    const b = await peer(B, [[d2, 50]]);
    await again.fill([B]);
    expect(carRequests(b)).toBe(0);
    expect(again.filled().map((r) => r.score)).toEqual([5, 50]);
  });

  it('skips a peer that serves a corrupt block, stores none of that DAG, and still fills from other peers', async () => {
    const l = await local();
    const bad = await newDag(5000);
    // The bridge's own content shares the bad DAG's first leaf: that block must survive the cleanup.
    const mine = await own(l, bad.content.subarray(0, 1000));
    const shared = bad.blocks[1]!.cid;
    expect(mine.blocks[1]!.cid.equals(shared)).toBe(true);
    // And a publish in progress has written (not yet pinned) the DAG's second leaf: not fill's to delete either.
    await l.storage.blocks.put(bad.blocks[2]!.cid, bad.blocks[2]!.bytes);
    const corrupt = bad.blocks.map((b, i) => (i === 3 ? { cid: b.cid, bytes: Uint8Array.from(b.bytes, (x, j) => (j === 10 ? x ^ 0x40 : x)) } : b));
    await peer(A, [[bad, 9]], { [bad.root.toString()]: { car: await carOf([bad.root], corrupt) } });
    const good = await newDag(3000);
    await peer(B, [[good, 1]]);

    const summary = await filler(l).fill([A, B]);
    const [a, b] = summary.peers;
    expect(a).toMatchObject({ peer: A, status: 'skipped', kind: 'bad-block', dags: 0 });
    expect(a!.reason).toBe(`${A} sent a corrupt block: block ${bad.blocks[3]!.cid} failed verification: its bytes hash to a different digest`);
    expect(l.lines).toContain(`fill: skipped peer ${A} (bad-block): ${a!.reason}`);
    expect(b).toMatchObject({ peer: B, status: 'ok', dags: 1 });
    // The corrupt block was never written, not even for a moment; everything written verifies.
    expect(l.puts.map((p) => p.cid.toString())).not.toContain(bad.blocks[3]!.cid.toString());
    for (const p of l.puts) expect(() => verifyBlock(p.cid, p.bytes)).not.toThrow();
    // The root was stored before the bad leaf arrived: removed again. The blocks that were here before stay.
    expect(await present(l, cidsOf(bad))).toEqual([false, true, true, false, false, false]);
    expect(await present(l, cidsOf(mine))).toEqual([true, true]);
    expect(await present(l, cidsOf(good))).not.toContain(false);
    expect(filler(l).filled().map((r) => r.cid.toString())).toEqual([good.root.toString()]);
  });

  describe('refuses a bad CAR and keeps nothing of it', () => {
    const cases: Array<[string, (d: TestDag, other: TestDag) => Promise<CarReply>, string, RegExp, Record<string, unknown>?, number?]> = [
      ['an incomplete DAG', async (d) => ({ car: await carOf([d.root], d.blocks.slice(0, -1)) }), 'incomplete', /lacks 1 linked block \(e\.g\. bafk/],
      ['a truncated CAR', async (d) => ({ car: (await carOf([d.root], d.blocks)).slice(0, -100) }), 'incomplete', /ended early, in the middle of a header or block/],
      ['a CAR of another root', async (_d, o) => ({ car: await carOf([o.root], o.blocks) }), 'incomplete', /sent a CAR for bafy\w+ when asked for bafy/],
      ['a block outside the DAG', async (d, o) => ({ car: await carOf([d.root], [d.blocks[0]!, o.blocks[1]!, ...d.blocks.slice(1)]) }), 'bad-block', /which is not part of/],
      ['more bytes than declared', async (d) => ({ car: await carOf([d.root], d.blocks) }), 'oversized', /with more than the 1000 bytes it declared/, { dagSize: 1000 }],
      ['more bytes than fit', async (d) => ({ car: await carOf([d.root], d.blocks) }), 'oversized', /with more than fits in the fill reserve \(20000 bytes free\)/, { dagSize: 10_000 }, 20_000],
      [
        'a huge block',
        async (d) => ({ car: Buffer.concat([await carOf([d.root], []), varint(64 << 20), new Uint8Array(1000)]) }),
        'oversized',
        /announced a block of 67108864 bytes; the limit is/,
      ],
    ];
    it.each(cases)('%s', async (_name, reply, kind, message, declared = {}, reserveBytes = 1 << 20) => {
      const l = await local();
      const d = await newDag(100_000, 4096);
      const o = await newDag(3000);
      const p = await peer(A, [], { [d.root.toString()]: await reply(d, o) }, { top: [topEntry(d, 1, declared)] });
      const summary = await filler(l, { reserveBytes }).fill([A]);
      expect(summary.peers[0]).toMatchObject({ status: 'skipped', kind, dags: 0 });
      expect(summary.peers[0]!.reason).toMatch(message);
      expect(summary.peers[0]!.reason).toContain(A);
      expect(carRequests(p)).toBe(1);
      expect(await present(l, [...cidsOf(d), ...cidsOf(o)])).not.toContain(true);
      expect(filler(l).usedBytes()).toBe(0);
    });
  });

  it('skips unreachable, stalled and too slow peers quickly, each with its reason', async () => {
    const l = await local();
    ports.set(A, await closedPort());
    const stalled = await newDag(20_000);
    const stalledCar = await carOf([stalled.root], stalled.blocks);
    await peer(B, [[stalled, 1]], { [stalled.root.toString()]: { stallAfter: stalledCar.length - 50, car: stalledCar } });
    await peer(C, [], {}, 'stall');
    const slow = await newDag(20_000);
    await peer(D, [[slow, 1]], { [slow.root.toString()]: { trickle: await carOf([slow.root], slow.blocks), everyMs: 10 } });
    const good = await newDag(3000);
    await peer(E, [[good, 1]]);

    const started = Date.now();
    const summary = await filler(l, { stallMs: 300, peerTimeoutMs: 1000 }).fill([A, B, C, D, E]);
    expect(Date.now() - started).toBeLessThan(3000);
    const byPeer = Object.fromEntries(summary.peers.map((p) => [p.peer, p]));
    expect(byPeer[A]).toMatchObject({ status: 'skipped', kind: 'unreachable' });
    expect(byPeer[A]!.reason).toMatch(new RegExp(`^cannot reach ${A}: .*ECONNREFUSED`));
    expect(byPeer[B]).toMatchObject({ status: 'skipped', kind: 'stalled' });
    expect(byPeer[B]!.reason).toBe(`no progress for 300 ms while fetching ${stalled.root} from ${B} (the peer or its Tor circuit is too slow)`);
    expect(byPeer[C]!.reason).toBe(`no progress for 300 ms while waiting for ${C}'s top list (the peer or its Tor circuit is too slow)`);
    expect(byPeer[D]).toMatchObject({ status: 'skipped', kind: 'timeout' });
    expect(byPeer[D]!.reason).toBe(`${D} did not finish within the per-peer deadline of 1000 ms`);
    expect(byPeer[D]!.received).toBeGreaterThan(20);
    expect(byPeer[E]).toMatchObject({ status: 'ok', dags: 1 });
    expect(await present(l, [...cidsOf(stalled), ...cidsOf(slow)])).not.toContain(true);
  });

  it('evicts the least valuable filled content for more valuable content, never own content, never for less', async () => {
    const l = await local();
    const [x, y, z, w] = [await newDag(), await newDag(), await newDag(), await newDag()];
    expect(new Set([x.bytes, y.bytes, z.bytes, w.bytes]).size).toBe(1);
    // Own content, shares a block with x, and is pinned by the bridge itself.
    const mine = await own(l, x.content.subarray(0, 1000));
    const huge = await newDag(20_000);
    await peer(A, [[x, 1], [y, 5]]);
    await peer(B, [[z, 3]]);
    const c = await peer(C, [[w, 2]]);
    const d = await peer(D, [[huge, 100]]);

    const reserveBytes = 2 * x.bytes + 100;
    const summary = await filler(l, { reserveBytes }).fill([A, B, C, D]);
    expect(summary.peers.map((p) => [p.status, p.dags, p.evicted])).toEqual([['ok', 2, 0], ['ok', 1, 1], ['ok', 0, 0], ['ok', 0, 0]]);
    // x (worth 1) made way for z (worth 3); y (worth 5) stayed.
    expect(filler(l).filled().map((r) => r.cid.toString())).toEqual([y.root, z.root].map(String));
    expect(await present(l, cidsOf(x))).toEqual([false, true, false, false, false, false]);
    expect(await present(l, [...cidsOf(y), ...cidsOf(z), ...cidsOf(mine)])).not.toContain(false);
    expect(await l.storage.pinMetadata(mine.root, {})).toEqual({ kind: 'own' });
    expect(await l.storage.pinMetadata(x.root, {})).toBeUndefined();
    // w (worth 2) is worth less than everything filled: nothing is evicted for it and it is not fetched.
    expect(summary.peers[2]!.notes).toEqual([`${w.root}: no room: it needs ${formatBytes(w.bytes)}; 100 B of the reserve is free and evicting the 0 less valuable filled DAGs would free only 0 B`]);
    expect(carRequests(c)).toBe(0);
    expect(summary.peers[3]!.notes).toEqual([`${huge.root}: no room: it needs ${formatBytes(huge.bytes)}, more than the whole fill reserve of ${formatBytes(reserveBytes)}`]);
    expect(carRequests(d)).toBe(0);
    expect(l.lines.some((line) => line.startsWith(`fill: evicted ${x.root} (`) && line.includes(`to make room for ${z.root} from ${B}`))).toBe(true);
  });

  it('counts this bridge\'s own demand for filled content when choosing what to evict', async () => {
    const l = await local();
    const [x, y, z] = [await newDag(), await newDag(), await newDag()];
    await peer(A, [[x, 1], [y, 5]]);
    await peer(B, [[z, 6]]);
    const localScore = (cid: CID): number => (cid.equals(x.root) ? 10 : 0);
    await filler(l, { reserveBytes: 2 * x.bytes + 100, localScore }).fill([A, B]);
    expect(filler(l).filled().map((r) => r.cid.toString())).toEqual([x.root, z.root].map(String));
  });

  it('reports progress as it goes and sums the run up', async () => {
    const l = await local();
    const d = await newDag(20_000);
    await peer(A, [[d, 1]]);
    ports.set(B, await closedPort());
    const events: FillProgress[] = [];
    const summary = await filler(l, { progress: (p) => events.push(p) }).fill([A, B]);
    const phases = events.map((e) => `${e.phase} ${e.peer === undefined ? '' : e.peer[0]}`).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['top a', 'fetch a', 'peer-done a', 'top b', 'peer-done b', 'done ']);
    const car = await carOf([d.root], d.blocks);
    expect(events.at(-1)).toMatchObject({ phase: 'done', peersDone: 2, peers: 2, dags: 1, bytes: car.length, blocks: d.blocks.length });
    expect(events.map((e) => e.bytes)).toEqual([...events.map((e) => e.bytes)].sort((x, y) => x - y));
    const text = formatFillSummary(summary).split('\n');
    expect(text[0]).toMatch(new RegExp(`^fill: 1 of 2 peers ok; 1 DAG filled, ${formatBytes(d.bytes)} in 21 blocks, 0 evicted, \\d+\\.\\d s, .+/s$`));
    expect(text[1]).toMatch(new RegExp(`^  ok       ${A}: 1 DAG, ${formatBytes(d.bytes)} in 21 blocks, 0 evicted, `));
    expect(text[2]).toMatch(new RegExp(`^  skipped  ${B} \\(unreachable\\): cannot reach ${B}: cannot connect to 127\\.0\\.0\\.1:\\d+ directly: .*ECONNREFUSED.*; before that: 0 DAGs`));
  });

  it('keeps its records true: forgets DAGs no longer pinned, and shrinks to a lowered reserve', async () => {
    const l = await local();
    const [x, y, z, v] = [await newDag(), await newDag(), await newDag(), await newDag()];
    await peer(A, [[x, 1], [y, 5], [z, 3], [v, 4]]);
    await filler(l).fill([A]);
    expect(filler(l).filled()).toHaveLength(4);
    // Someone removed v's pin behind fill's back: its record no longer holds any bytes.
    l.pins.unpin(v.root);
    // And the operator lowered FILL_RESERVE_BYTES to two DAGs.
    const summary = await filler(l, { reserveBytes: 2 * x.bytes + 100 }).fill([]);
    expect(summary.peers).toEqual([]);
    expect(l.lines).toContain(`fill: forgetting ${v.root}: it is no longer pinned`);
    expect(filler(l).filled().map((r) => r.cid.toString())).toEqual([y.root, z.root].map(String));
    expect(await present(l, cidsOf(x))).not.toContain(true);
    expect(await present(l, [...cidsOf(y), ...cidsOf(z)])).not.toContain(false);
  });

  it('holds its blocks against gc until they are pinned', async () => {
    const l = await local();
    const d = await newDag(20_000);
    await peer(A, [[d, 1]], { [d.root.toString()]: { trickle: await carOf([d.root], d.blocks), everyMs: 10, chunk: 2048 } });
    const filling = filler(l).fill([A]);
    await until('the first blocks of the DAG to be stored', () => l.storage.blocks.has(d.root), { intervalMs: 5 });
    // A gc now (the bridge's own, say) must wait: the blocks written so far are not pinned yet.
    let pinnedAtGc = false;
    await l.storage.lock.exclusive(async () => {
      pinnedAtGc = await l.storage.isPinned(d.root, {});
      await l.pins.gc();
    });
    expect(pinnedAtGc).toBe(true);
    expect((await filling).dags).toBe(1);
    expect(await present(l, cidsOf(d))).not.toContain(false);
  });

  it('stops at once when aborted, leaving no unpinned blocks behind', async () => {
    const l = await local();
    const d = await newDag(20_000);
    await peer(A, [[d, 1]], { [d.root.toString()]: { trickle: await carOf([d.root], d.blocks), everyMs: 5 } });
    const ac = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => ac.abort(reason), 300);
    await expect(filler(l).fill([A], { signal: ac.signal })).rejects.toBe(reason);
    expect(await present(l, cidsOf(d))).not.toContain(true);
    expect(filler(l).filled()).toEqual([]);
  });

  it('refuses to run twice at once', async () => {
    const l = await local();
    await peer(A, [], {}, 'stall');
    const f = filler(l, { stallMs: 200 });
    const first = f.fill([A]);
    await expect(f.fill([A])).rejects.toThrow('a fill is already running on this bridge; wait for it to finish');
    await first;
  });
});
