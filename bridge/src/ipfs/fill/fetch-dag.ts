// Fetches one DAG from one peer into storage, or leaves storage as it was. Each block is verified before it
// is stored; blocks are written and the DAG pinned inside one shared section of the storage lock, because
// gc deletes every unpinned block and ours are unpinned until the very end. When anything fails, the blocks
// this fetch added (and only those: a block already here may be the bridge's own) are deleted again.
// The shared section spans the network transfer, so a gc waits for at most one DAG's fetch (bounded by the
// stall clock and the per-peer deadline); there is no way to protect unpinned blocks in between.
import type { CID } from 'multiformats/cid';
import type { Logger } from '../../log/logger.js';
import { abortReason } from '../../util/http-stream.js';
import { carBlocks } from './car-blocks.js';
import { DagVerifier } from './dag-verifier.js';
import { PeerFault } from './errors.js';
import type { PeerClient, TopEntry } from './peer-client.js';
import type { FillStorage, PinMetadata } from './storage.js';
import { Watchdog } from './watchdog.js';

/** Honest sizes are exact; a little slack absorbs a peer whose count is slightly stale. */
export const sizeSlack = (declared: number): number => 64 * 1024 + Math.ceil(declared / 64);
/** Per block a CAR adds a length varint and the CID (≤ ~140 bytes), plus one header. */
const FRAMING_PER_BLOCK = 140;
const HEADER_ALLOWANCE = 1024;
const BLOCK_COUNT_SLACK = 16;

export interface FetchDagOptions {
  storage: FillStorage;
  peers: PeerClient;
  peer: string;
  entry: TopEntry;
  /** Free bytes in the reserve after any eviction: the DAG may not grow beyond it. */
  room: number;
  stallMs: number;
  /** Aborts the fetch: the peer's deadline and the run's signal. */
  signal: AbortSignal;
  /** Aborts local work only (pinning a large DAG is not the peer's slowness): the run's signal. */
  localSignal: AbortSignal | undefined;
  metadata: PinMetadata;
  /** Records the pinned DAG, still inside the lock; if it throws the DAG is unpinned and removed. */
  record: (result: FetchedDag) => void;
  onBytes?: (n: number) => void;
  onBlock?: () => void;
  log?: Pick<Logger, 'warn'>;
}

export interface FetchedDag {
  /** Sum of the DAG's block bytes and its number of blocks (verified, each counted once). */
  bytes: number;
  blocks: number;
  /** Blocks this fetch stored (the others were here already). */
  added: number;
}

export async function fetchDag(o: FetchDagOptions): Promise<FetchedDag> {
  const { storage, peer, entry } = o;
  const root = entry.cid;
  const declaredCap = entry.dagSize + sizeSlack(entry.dagSize);
  const maxBlockBytes = Math.min(declaredCap, o.room);
  const maxBlocks = entry.blocks + BLOCK_COUNT_SLACK;
  const maxCarBytes = maxBlockBytes + HEADER_ALLOWANCE + maxBlocks * FRAMING_PER_BLOCK;
  const tooMuch = maxBlockBytes < declaredCap ? `more than fits in the fill reserve (${o.room} bytes free)` : `more than the ${entry.dagSize} bytes it declared`;

  return storage.lock.shared(async () => {
    const dog = new Watchdog(o.signal, o.stallMs, () => `fetching ${root} from ${peer}`);
    const added: CID[] = [];
    let kept = false;
    let fetching = true;
    try {
      const body = await o.peers.car(peer, root, { signal: dog.signal });
      const verifier = new DagVerifier(root, peer);
      let blockBytes = 0;
      let blockCount = 0;
      const onBytes = (n: number): void => {
        dog.poke();
        o.onBytes?.(n);
      };
      for await (const block of carBlocks(body, root, { peer, maxBytes: maxCarBytes, overLimit: tooMuch, onBytes, signal: dog.signal })) {
        // Repeats count too, or a peer could stream the same block forever.
        blockBytes += block.bytes.byteLength;
        if (blockBytes > maxBlockBytes) throw new PeerFault('oversized', `${peer} sent ${root} with ${tooMuch}`);
        if (++blockCount > maxBlocks) throw new PeerFault('oversized', `${peer} sent ${root} with more blocks than the ${entry.blocks} it declared`);
        // Verified before anything is written: a bad block never reaches the blockstore.
        if (!verifier.accept(block.cid, block.bytes)) continue;
        if (!(await storage.blocks.has(block.cid, { signal: dog.signal }))) {
          await storage.blocks.put(block.cid, block.bytes, { signal: dog.signal });
          added.push(block.cid);
        }
        o.onBlock?.();
        // Done as soon as the DAG is: a peer that keeps the connection open afterwards is not stalling.
        if (verifier.complete) break;
      }
      verifier.finish();
      // All bytes are here: from now on only a shutdown may stop us, not the peer's stall clock.
      fetching = false;
      dog.close();
      await storage.pin(root, o.metadata, { signal: o.localSignal });
      const result = { bytes: verifier.bytes, blocks: verifier.blocks, added: added.length };
      try {
        o.record(result);
      } catch (err) {
        await storage.unpin(root, {});
        throw err;
      }
      kept = true;
      return result;
    } catch (err) {
      // When our signal aborted, its reason (stall, deadline, shutdown) is the real story, whatever
      // error the aborted operation raised.
      if (o.localSignal?.aborted) throw abortReason(o.localSignal);
      if (fetching && dog.signal.aborted && !(err instanceof PeerFault)) throw abortReason(dog.signal);
      throw err;
    } finally {
      dog.close();
      if (!kept) await removeAdded(storage, added, o.log);
    }
  });
}

/**
 * Deletes the blocks a failed fetch stored, unless a pin now holds one (the bridge published the same
 * block meanwhile). Deliberately without a signal: after a shutdown or stall abort the cleanup must still
 * run, and it is local and quick.
 */
async function removeAdded(storage: FillStorage, added: CID[], log: Pick<Logger, 'warn'> | undefined): Promise<void> {
  for (const cid of added.reverse()) {
    try {
      if (!(await storage.isPinned(cid, {}))) await storage.blocks.delete(cid, {});
    } catch (err) {
      log?.warn(`fill: could not remove block ${cid} of a failed fill (gc will): ${(err as Error).message}`);
    }
  }
}
