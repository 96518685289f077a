// What fill needs of the node's storage, and its Helia implementation. The adapter does no locking itself:
// the Filler wraps writes in lock.shared and gc in lock.exclusive, and taking the lock twice would deadlock.
import type { Helia } from '@helia/interface';
import type { CID } from 'multiformats/cid';
import { heliaBlocks, type Blocks } from '../blocks.js';
import type { StorageLock } from '../storage-lock.js';

export type PinMetadata = Record<string, string | number | boolean>;
type Opts = { signal?: AbortSignal };

export interface FillStorage {
  lock: StorageLock;
  blocks: Blocks;
  /** Pins the (complete, stored) DAG under `root` recursively. */
  pin(root: CID, metadata: PinMetadata, opts: Opts): Promise<void>;
  unpin(root: CID, opts: Opts): Promise<void>;
  /** Whether any pin holds this block (as a root or inside a pinned DAG). */
  isPinned(cid: CID, opts: Opts): Promise<boolean>;
  /** The metadata of the pin rooted at `root`; undefined when `root` is not itself pinned. */
  pinMetadata(root: CID, opts: Opts): Promise<PinMetadata | undefined>;
  /** Deletes every unpinned block. */
  gc(opts: Opts): Promise<void>;
}

export function heliaFillStorage(helia: Pick<Helia, 'blockstore' | 'pins' | 'gc'>, lock: StorageLock): FillStorage {
  return {
    lock,
    blocks: heliaBlocks(helia),
    async pin(root, metadata, opts) {
      // pins.add is an async generator: nothing happens until it is drained.
      for await (const _ of helia.pins.add(root, { metadata, ...opts }));
    },
    async unpin(root, opts) {
      for await (const _ of helia.pins.rm(root, opts));
    },
    isPinned: (cid, opts) => helia.pins.isPinned(cid, opts),
    async pinMetadata(root, opts) {
      try {
        return (await helia.pins.get(root, opts)).metadata;
      } catch (err) {
        if ((err as Error).name === 'NotFoundError') return undefined;
        throw err;
      }
    },
    gc: (opts) => helia.gc(opts),
  };
}
