import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { CID } from 'multiformats/cid';
import { BlockMissingError, type Blocks } from './blocks.js';
import { DAG_PB, isInline, linksOf, RAW, UnsupportedCodecError } from './dag.js';

export type PinKind = 'own' | 'filled';
export type PinMetadata = Record<string, string | number | boolean>;

export interface PinRecord {
  root: CID;
  kind: PinKind;
  metadata: PinMetadata;
  pinnedAt: number;
}

/** The blocks on disk, for garbage collection: listed by CID (no bytes read) and deleted. */
export interface StoredBlocks {
  cids(signal?: AbortSignal): AsyncIterable<CID>;
  delete(cid: CID): Promise<void>;
}

/** blockstore-fs's layout: one file per block, named by its multihash, in shard folders. */
export function fsStoredBlocks(dir: string, sharding: { decode(name: string): CID; extension: string }, store: { delete(cid: CID): Promise<void> }): StoredBlocks {
  return {
    async *cids(signal) {
      const walk = async function* (dir: string): AsyncGenerator<CID> {
        for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
          signal?.throwIfAborted();
          if (e.isDirectory()) yield* walk(join(dir, e.name));
          else if (e.name.endsWith(sharding.extension)) {
            try {
              yield sharding.decode(e.name);
            } catch {
              // Not a block file (a temporary file of an interrupted write): never ours to judge.
            }
          }
        }
      };
      yield* walk(dir);
    },
    delete: (cid) => store.delete(cid),
  };
}

/** Any blockstore that can list its blocks (the memory one in tests): listing reads the bytes too. */
export function listedStoredBlocks(store: { getAll(): AsyncIterable<{ cid: CID }> | Iterable<{ cid: CID }>; delete(cid: CID): unknown }): StoredBlocks {
  return {
    async *cids(signal) {
      const all: CID[] = [];
      // Collected first: deleting while the store iterates itself is not safe for every store.
      for await (const { cid } of store.getAll()) {
        signal?.throwIfAborted();
        all.push(cid);
      }
      yield* all;
    },
    delete: async (cid) => void (await store.delete(cid)),
  };
}

// One row per pinned block and root: a block stays while any pinned DAG holds it. Keyed on the
// multihash, as blockstore-fs stores blocks (a raw and a dag-pb CID of the same bytes are one file).
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS pins (
    root TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('own', 'filled')),
    metadata TEXT NOT NULL,
    pinned_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS pinned_blocks (
    mh BLOB NOT NULL,
    root TEXT NOT NULL REFERENCES pins(root) ON DELETE CASCADE,
    PRIMARY KEY (mh, root)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS pinned_blocks_root ON pinned_blocks(root);`;

/**
 * The node's pins, in SQLite instead of Helia's pinning. Helia writes a datastore file per block and
 * reads the whole DAG back to pin it: 2.9 s for a 200 MB site here (bench/ipfs), against tens of
 * milliseconds for rows in one transaction. The publisher knows every block it wrote, and walking a
 * DAG needs to read only its dag-pb nodes: a raw leaf's CID says all there is to know.
 * Garbage collection is ours too (gc()): Helia's own would delete everything, so it is never called.
 */
export class PinStore {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    private readonly blocks: Blocks,
    private readonly stored: StoredBlocks,
  ) {
    db.exec(SCHEMA);
    this.stmts = {
      // The site's own pin is never turned into filled content (which fill may evict); the reverse is fine.
      insertPin: db.prepare(
        `INSERT INTO pins (root, kind, metadata, pinned_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (root) DO UPDATE SET kind = excluded.kind, metadata = excluded.metadata WHERE pins.kind <> 'own' OR excluded.kind = 'own'`,
      ),
      insertBlock: db.prepare('INSERT OR IGNORE INTO pinned_blocks (mh, root) VALUES (?, ?)'),
      deletePin: db.prepare('DELETE FROM pins WHERE root = ?'),
      getPin: db.prepare('SELECT root, kind, metadata, pinned_at FROM pins WHERE root = ?'),
      listPins: db.prepare('SELECT root, kind, metadata, pinned_at FROM pins ORDER BY pinned_at'),
      blockPinned: db.prepare('SELECT 1 FROM pinned_blocks WHERE mh = ? LIMIT 1'),
    };
    db.pragma('foreign_keys = ON');
  }

  /**
   * Pins the DAG under `root`, which must be stored whole (BlockMissingError otherwise). `blocks`,
   * when the caller just wrote them all, saves the walk.
   */
  async pin(root: CID, kind: PinKind, metadata: PinMetadata = {}, options: { blocks?: Iterable<CID>; signal?: AbortSignal } = {}): Promise<void> {
    const cids = options.blocks ? [...options.blocks] : await this.walk(root, options.signal);
    const key = root.toString();
    this.db.transaction(() => {
      this.stmts.insertPin.run(key, kind, JSON.stringify(metadata), Date.now());
      for (const c of cids) this.stmts.insertBlock.run(c.multihash.bytes, key);
      this.stmts.insertBlock.run(root.multihash.bytes, key);
    })();
  }

  unpin(root: CID): void {
    this.stmts.deletePin.run(root.toString());
  }

  /** Whether any pin holds this block, as its root or inside its DAG. */
  isPinned(cid: CID): boolean {
    return this.stmts.blockPinned.get(cid.multihash.bytes) !== undefined;
  }

  get(root: CID): PinRecord | undefined {
    const r = this.stmts.getPin.get(root.toString()) as Row | undefined;
    return r && record(r);
  }

  list(kind?: PinKind): PinRecord[] {
    return (this.stmts.listPins.all() as Row[]).map(record).filter((p) => !kind || p.kind === kind);
  }

  /** Deletes every stored block that no pin holds. The caller keeps writers out (StorageLock). */
  async gc(options: { signal?: AbortSignal } = {}): Promise<{ deleted: number }> {
    let deleted = 0;
    for await (const cid of this.stored.cids(options.signal)) {
      if (this.isPinned(cid)) continue;
      await this.stored.delete(cid);
      deleted++;
    }
    return { deleted };
  }

  /** Every block of the DAG, reading only dag-pb nodes; a raw leaf need only be present. */
  private async walk(root: CID, signal?: AbortSignal): Promise<CID[]> {
    const out: CID[] = [];
    const seen = new Set<string>();
    const stack = [root];
    while (stack.length > 0) {
      signal?.throwIfAborted();
      const cid = stack.pop()!;
      const key = cid.toString();
      if (seen.has(key)) continue;
      seen.add(key);
      if (isInline(cid)) continue;
      if (cid.code === DAG_PB) {
        stack.push(...linksOf(cid, await this.blocks.get(cid, { signal })));
      } else if (cid.code !== RAW) {
        throw new UnsupportedCodecError(cid);
      } else if (!(await this.blocks.has(cid, { signal }))) {
        throw new BlockMissingError(cid);
      }
      out.push(cid);
    }
    return out;
  }
}

interface Row {
  root: string;
  kind: PinKind;
  metadata: string;
  pinned_at: number | bigint;
}

function record(r: Row): PinRecord {
  return { root: CID.parse(r.root), kind: r.kind, metadata: JSON.parse(r.metadata) as PinMetadata, pinnedAt: Number(r.pinned_at) };
}
