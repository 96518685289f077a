// What fill needs of the node's storage, and its implementation on the PinStore. The adapter does no locking itself:
// the Filler wraps writes in lock.shared and gc in lock.exclusive, and taking the lock twice would deadlock.
import type { CID } from 'multiformats/cid';
import type { Blocks } from '../blocks.js';
import type { PinStore } from '../pins.js';
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

/** Fill's storage on the node's PinStore: filled DAGs are pins of kind 'filled'. */
export function pinStoreFillStorage(pins: PinStore, blocks: Blocks, lock: StorageLock): FillStorage {
  return {
    lock,
    blocks,
    async pin(root, metadata, opts) {
      await pins.pin(root, 'filled', metadata, opts);
    },
    async unpin(root) {
      // Only filled content: the site's own pin of the same root stays.
      if (pins.get(root)?.kind === 'filled') pins.unpin(root);
    },
    isPinned: async (cid) => pins.isPinned(cid),
    async pinMetadata(root) {
      const p = pins.get(root);
      return p && { ...p.metadata, kind: p.kind };
    },
    gc: async (opts) => void (await pins.gc(opts)),
  };
}
