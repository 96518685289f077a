// fill: caches the content other bridges' visitors ask for most, in a reserved share of this bridge's
// storage, so our gateway can serve it too (and still does after the peer is gone). Peers are taken one at
// a time: the reserve accounting stays simple and exact, and Tor bandwidth is not split between peers.
// A peer that fails in any way is skipped for this run with its reason; the next peer is tried.
import type Database from 'better-sqlite3';
import type { CID } from 'multiformats/cid';
import type { Logger } from '../../log/logger.js';
import { abortReason } from '../../util/http-stream.js';
import { isInline } from '../dag.js';
import { checkFillable } from './dag-verifier.js';
import { DagSkip, PeerFault } from './errors.js';
import { fetchDag } from './fetch-dag.js';
import { FilledTable, type FilledRecord } from './filled-table.js';
import { formatBytes } from './format.js';
import type { PeerClient, TopEntry } from './peer-client.js';
import { planRoom, type Evictable } from './plan.js';
import type { FillProgress, FillSummary, PeerSummary } from './report.js';
import type { FillStorage } from './storage.js';
import { peerDeadline, Watchdog } from './watchdog.js';

export interface FillerOptions {
  storage: FillStorage;
  /** A better-sqlite3 handle; the filler keeps its records in its own table (ipfs_filled). */
  db: Database.Database;
  peers: PeerClient;
  /** FILL_RESERVE_BYTES: filled DAGs never hold more than this. */
  reserveBytes: number;
  /** How many of each peer's top CIDs to consider. */
  topN: number;
  /** This bridge's own decayed request count for a CID, so filled content our visitors use is kept. */
  localScore?: (cid: CID) => number;
  log?: Pick<Logger, 'info' | 'warn'>;
  progress?: (p: FillProgress) => void;
  /** A request without a byte of progress for this long is abandoned; default 60 s (onion connects are slow). */
  stallMs?: number;
  /** One peer's whole turn (top list and all its DAGs); default 15 min. */
  peerTimeoutMs?: number;
  /** A filled DAG's recorded score halves this often when no one asks for it again; default 1 day. */
  scoreHalfLifeMs?: number;
  now?: () => number;
}

/** Marks our pins: only pins carrying it are ever unpinned by fill. */
export const FILLED_KIND = 'filled';

interface Run {
  startedAt: number;
  peers: number;
  peersDone: number;
  dags: number;
  bytes: number;
  blocks: number;
}

export class Filler {
  private readonly table: FilledTable;
  private readonly storage: FillStorage;
  private readonly now: () => number;
  private readonly stallMs: number;
  private readonly peerTimeoutMs: number;
  private readonly halfLifeMs: number;
  private running = false;

  constructor(private readonly o: FillerOptions) {
    if (!Number.isSafeInteger(o.reserveBytes) || o.reserveBytes < 0) throw new Error(`FILL_RESERVE_BYTES must be a whole number of bytes ≥ 0, not ${o.reserveBytes}`);
    if (!Number.isSafeInteger(o.topN) || o.topN < 1) throw new Error(`the fill top N must be a whole number ≥ 1, not ${o.topN}`);
    this.table = new FilledTable(o.db);
    this.storage = o.storage;
    this.now = o.now ?? Date.now;
    this.stallMs = o.stallMs ?? 60_000;
    this.peerTimeoutMs = o.peerTimeoutMs ?? 15 * 60_000;
    this.halfLifeMs = o.scoreHalfLifeMs ?? 24 * 3600_000;
  }

  /** The DAGs fill has stored, oldest first. */
  filled(): FilledRecord[] {
    return this.table.all();
  }

  /** Bytes of the reserve in use. */
  usedBytes(): number {
    return this.table.usedBytes();
  }

  /**
   * What a filled DAG is worth keeping now: our own visitors' interest, or the peer's count at fill time
   * decayed since. Without the second, everything just filled (which no one here has asked for yet) would
   * be the first thing evicted by the next peer's list.
   */
  valueOf(r: FilledRecord): number {
    const decayed = r.score * 0.5 ** (Math.max(0, this.now() - r.scoredAt) / this.halfLifeMs);
    return Math.max(this.o.localScore?.(r.cid) ?? 0, decayed);
  }

  /** Fills from each peer in turn. Throws only when aborted or when local storage fails. */
  async fill(peerOnions: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<FillSummary> {
    if (this.running) throw new Error('a fill is already running on this bridge; wait for it to finish');
    this.running = true;
    try {
      opts.signal?.throwIfAborted();
      const peers = [...new Set(peerOnions)];
      const run: Run = { startedAt: this.now(), peers: peers.length, peersDone: 0, dags: 0, bytes: 0, blocks: 0 };
      await this.forgetLostPins(opts.signal);
      await this.shrinkToReserve(opts.signal);
      const summaries: PeerSummary[] = [];
      for (const peer of peers) {
        summaries.push(await this.fillPeer(peer, run, opts.signal));
        run.peersDone++;
        this.emit(run, 'peer-done', peer);
      }
      this.emit(run, 'done', undefined);
      const ms = this.now() - run.startedAt;
      const sum = (f: (p: PeerSummary) => number): number => summaries.reduce((a, p) => a + f(p), 0);
      return {
        peers: summaries,
        dags: sum((p) => p.dags),
        bytes: sum((p) => p.bytes),
        blocks: sum((p) => p.blocks),
        received: sum((p) => p.received),
        evicted: sum((p) => p.evicted),
        ms,
        bytesPerSec: ms > 0 ? (sum((p) => p.received) * 1000) / ms : 0,
      };
    } finally {
      this.running = false;
    }
  }

  private async fillPeer(peer: string, run: Run, signal: AbortSignal | undefined): Promise<PeerSummary> {
    const s: PeerSummary = { peer, status: 'ok', dags: 0, bytes: 0, blocks: 0, received: 0, evicted: 0, ms: 0, bytesPerSec: 0, notes: [] };
    const started = this.now();
    const deadline = peerDeadline(signal, this.peerTimeoutMs, peer);
    try {
      this.emit(run, 'top', peer);
      const top = await this.topOf(peer, deadline.signal);
      for (const entry of top) {
        if (deadline.signal.aborted) throw abortReason(deadline.signal);
        try {
          await this.fillOne(peer, entry, s, run, deadline.signal, signal);
        } catch (err) {
          if (!(err instanceof DagSkip)) throw err;
          s.notes.push(`${entry.cid}: ${err.message}`);
          this.o.log?.info(`fill: not filling ${entry.cid} from ${peer}: ${err.message}`);
        }
      }
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (!(err instanceof PeerFault)) {
        throw new Error(`fill stopped while filling from ${peer}, by a local failure (check the IPFS data directory and free disk space): ${(err as Error).message}`, { cause: err });
      }
      s.status = 'skipped';
      s.kind = err.kind;
      s.reason = err.message;
      this.o.log?.warn(`fill: skipped peer ${peer} (${err.kind}): ${err.message}`);
    } finally {
      deadline.dispose();
      s.ms = this.now() - started;
      s.bytesPerSec = s.ms > 0 ? (s.received * 1000) / s.ms : 0;
    }
    return s;
  }

  private async topOf(peer: string, signal: AbortSignal): Promise<TopEntry[]> {
    const dog = new Watchdog(signal, this.stallMs, () => `waiting for ${peer}'s top list`);
    try {
      return await this.o.peers.top(peer, this.o.topN, { signal: dog.signal });
    } catch (err) {
      if (dog.signal.aborted && !(err instanceof PeerFault)) throw abortReason(dog.signal);
      throw err;
    } finally {
      dog.close();
    }
  }

  private async fillOne(peer: string, entry: TopEntry, s: PeerSummary, run: Run, peerSignal: AbortSignal, runSignal: AbortSignal | undefined): Promise<void> {
    const { cid } = entry;
    if (isInline(cid)) throw new DagSkip('an inline (identity) CID holds no blocks to store');
    checkFillable(cid);
    // Distinct blocks need distinct bytes: more blocks than bytes (+ the one empty block) cannot be true.
    if (entry.blocks > entry.dagSize + 1) {
      throw new PeerFault('bad-response', `${peer} declares ${entry.blocks} blocks in ${entry.dagSize} bytes for ${cid}, which cannot be`);
    }
    const existing = this.table.get(cid);
    if (existing) {
      // Seen again: keep the fresher, higher interest so it is not evicted for lesser content.
      if (entry.count > this.valueOf(existing)) this.table.rescore(cid, entry.count, this.now());
      return;
    }
    // The bridge's own content, or part of a DAG pinned here already: our gateway serves it anyway.
    if (await this.storage.isPinned(cid, { signal: peerSignal })) return;

    const plan = planRoom<FilledRecord>({
      need: entry.dagSize,
      value: entry.count,
      reserve: this.o.reserveBytes,
      used: this.table.usedBytes(),
      filled: this.evictables(),
    });
    if (!plan.fits) throw new DagSkip(`no room: ${plan.reason}`);
    if (plan.evict.length > 0) {
      s.evicted += await this.evict(plan.evict, `to make room for ${cid} from ${peer} (worth ${entry.count.toFixed(1)})`, runSignal);
    }

    const room = this.o.reserveBytes - this.table.usedBytes();
    const filledAt = this.now();
    const got = await fetchDag({
      storage: this.storage,
      peers: this.o.peers,
      peer,
      entry,
      room,
      stallMs: this.stallMs,
      signal: peerSignal,
      localSignal: runSignal,
      metadata: { kind: FILLED_KIND, peer, filledAt },
      record: (r) => this.table.insert({ cid, peer, bytes: r.bytes, blocks: r.blocks, score: entry.count, scoredAt: filledAt, filledAt }),
      onBytes: (n) => {
        s.received += n;
        run.bytes += n;
        this.emit(run, 'fetch', peer);
      },
      onBlock: () => {
        run.blocks++;
      },
      ...(this.o.log ? { log: this.o.log } : {}),
    });
    s.dags++;
    s.bytes += got.bytes;
    s.blocks += got.blocks;
    run.dags++;
    this.o.log?.info(`fill: filled ${cid} from ${peer}: ${formatBytes(got.bytes)} in ${got.blocks} blocks`);
  }

  private evictables(): Evictable<FilledRecord>[] {
    return this.table.all().map((r) => ({ key: r, bytes: r.bytes, value: this.valueOf(r) }));
  }

  /**
   * Unpins the given filled DAGs, forgets them, then collects garbage. Only a pin still marked as ours is
   * removed: if the bridge has since published the same root, the pin is its own and stays.
   */
  private async evict(victims: readonly Evictable<FilledRecord>[], why: string, signal: AbortSignal | undefined): Promise<number> {
    await this.storage.lock.shared(async () => {
      for (const { key: r, value } of victims) {
        const meta = await this.storage.pinMetadata(r.cid, { signal });
        if (meta?.kind === FILLED_KIND) await this.storage.unpin(r.cid, { signal });
        this.table.remove(r.cid);
        this.o.log?.info(`fill: evicted ${r.cid} (${formatBytes(r.bytes)}, worth ${value.toFixed(1)}, from ${r.peer}) ${why}`);
      }
    });
    // gc deletes every unpinned block: it must run alone, never while a writer holds unpinned blocks.
    await this.storage.lock.exclusive(() => this.storage.gc({ signal }));
    return victims.length;
  }

  /** A record whose filled pin is gone (the datastore was reset, someone unpinned it) holds no bytes. */
  private async forgetLostPins(signal: AbortSignal | undefined): Promise<void> {
    for (const r of this.table.all()) {
      const meta = await this.storage.pinMetadata(r.cid, { signal });
      if (meta?.kind === FILLED_KIND) continue;
      this.table.remove(r.cid);
      this.o.log?.warn(`fill: forgetting ${r.cid}: ${meta ? 'its pin is no longer a fill pin' : 'it is no longer pinned'}`);
    }
  }

  /** After FILL_RESERVE_BYTES was lowered: evict the least valuable until what is filled fits again. */
  private async shrinkToReserve(signal: AbortSignal | undefined): Promise<void> {
    const plan = planRoom<FilledRecord>({ need: 0, value: Infinity, reserve: this.o.reserveBytes, used: this.table.usedBytes(), filled: this.evictables() });
    if (plan.fits && plan.evict.length > 0) await this.evict(plan.evict, `to fit the fill reserve of ${formatBytes(this.o.reserveBytes)}`, signal);
  }

  private emit(run: Run, phase: FillProgress['phase'], peer: string | undefined): void {
    this.o.progress?.({
      phase,
      peer,
      peersDone: run.peersDone,
      peers: run.peers,
      dags: run.dags,
      bytes: run.bytes,
      blocks: run.blocks,
      elapsedMs: this.now() - run.startedAt,
    });
  }
}
