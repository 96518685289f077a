import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Helia } from '@helia/interface';
import { globSource, unixfs } from '@helia/unixfs';
import type Database from 'better-sqlite3';
import { CID } from 'multiformats/cid';
import type { Logger } from '../log/logger.js';
import type { StorageLock } from './storage-lock.js';
import type { PinStore } from './pins.js';
import { readSiteTree } from './import/site-tree.js';
import { DEFAULT_LAYOUT, NeedsShardingError, UnixfsWriter } from './import/unixfs-writer.js';

export interface PublisherOptions {
  /** For the importer, used only for folders too large for UnixfsWriter. */
  helia: Pick<Helia, 'blockstore'>;
  pins: PinStore;
  /** Where published blocks are written: the node's own blockstore, under Helia's (see IpfsNode). */
  store: { has(cid: CID): Promise<boolean>; put(cid: CID, bytes: Uint8Array): Promise<unknown> };
  /** The site: WWW_DIR. */
  wwwDir: string;
  lock: StorageLock;
  db: Database.Database;
  /** Roots kept pinned (IPFS_KEEP_VERSIONS); older ones are unpinned and collected. */
  keepVersions: number;
  log: Logger;
  /** Quiet time after the last change before republishing. Default 300 ms. */
  debounceMs?: number;
  now?: () => number;
}

export interface Published {
  root: CID;
  /** The root differs from the one published before. */
  changed: boolean;
  files: number;
  bytes: number;
  ms: number;
}

export interface PublisherEvents {
  published: [Published];
  error: [Error];
}

/**
 * Publishes WWW_DIR as UnixFS (CIDv1, raw leaves, wrapped in a directory), pins it as the bridge's
 * own content, keeps the last `keepVersions` roots, and republishes when the folder changes.
 */
export class Publisher extends EventEmitter<PublisherEvents> {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<Published | undefined> | undefined;
  private closed = false;
  private last: CID | undefined;
  private readonly now: () => number;

  constructor(private readonly o: PublisherOptions) {
    super();
    this.now = o.now ?? Date.now;
    const latest = o.db.prepare('SELECT root FROM versions ORDER BY published_at DESC LIMIT 1').get() as { root: string } | undefined;
    this.last = latest ? CID.parse(latest.root) : undefined;
  }

  /** The newest published root, also from before a restart. */
  current(): CID | undefined {
    return this.last;
  }

  /** The kept roots, newest first. */
  versions(): Array<{ root: string; publishedAt: number }> {
    return (this.o.db.prepare('SELECT root, published_at FROM versions ORDER BY published_at DESC').all() as Array<{ root: string; published_at: number }>).map((r) => ({
      root: r.root,
      publishedAt: Number(r.published_at),
    }));
  }

  /** Adds the folder now; a call during a run waits for it, then runs again. */
  async publish(signal?: AbortSignal): Promise<Published> {
    if (this.running) {
      // An edit made during a run may have been missed by it: run once more after it.
      await this.running.catch(() => undefined);
      return this.publish(signal);
    }
    const run = this.add(signal);
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  private async add(signal?: AbortSignal): Promise<Published> {
    const { wwwDir, lock, pins } = this.o;
    const started = performance.now();
    const dir = await stat(wwwDir).catch(() => undefined);
    if (!dir?.isDirectory()) throw new Error(`WWW_DIR ${wwwDir} is not a folder: create it and put the site in it, or set WWW_DIR`);
    const result = await lock.shared(async () => {
      const { root, files, bytes, blocks } = await this.write(signal);
      if (pins.get(root)?.kind !== 'own') await pins.pin(root, 'own', { publishedAt: this.now() }, { blocks, signal });
      return { root, files, bytes };
    });
    const changed = !this.last?.equals(result.root);
    this.last = result.root;
    this.o.db.prepare('INSERT INTO versions (root, published_at) VALUES (?, ?) ON CONFLICT (root) DO UPDATE SET published_at = excluded.published_at').run(result.root.toString(), this.now());
    await this.prune(signal);
    const published = { ...result, changed, ms: performance.now() - started };
    this.emit('published', published);
    return published;
  }

  /**
   * The site's blocks: by UnixfsWriter, which gives the importer's own roots faster, or by the
   * importer itself for a folder so large it must be a HAMT shard.
   */
  private async write(signal?: AbortSignal): Promise<{ root: CID; files: number; bytes: number; blocks?: CID[] }> {
    const { wwwDir, store } = this.o;
    const blocks: CID[] = [];
    const sink = {
      put: async (cid: CID, bytes: Uint8Array) => {
        blocks.push(cid);
        // A block already stored (an unchanged file, on republish) is not written again.
        if (!(await store.has(cid))) await store.put(cid, bytes);
      },
    };
    const writer = new UnixfsWriter(sink, DEFAULT_LAYOUT, signal);
    try {
      const root = await writer.directory(await readSiteTree(wwwDir, signal));
      return { root, files: writer.stats.files, bytes: writer.stats.bytes, blocks };
    } catch (err) {
      if (!(err instanceof NeedsShardingError)) throw err;
    }
    let root: CID | undefined;
    let files = 0;
    let bytes = 0;
    for await (const entry of unixfs(this.o.helia as Helia).addAll(globSource(wwwDir, '**/*'), { wrapWithDirectory: true, cidVersion: 1, rawLeaves: true, signal })) {
      // The wrapping directory comes last, with an empty path.
      if (entry.path === '') root = entry.cid;
      else if (!entry.unixfs || entry.unixfs.type === 'file' || entry.unixfs.type === 'raw') {
        // A one-block file with raw leaves is just a raw block: no UnixFS metadata at all.
        files++;
        bytes += Number(entry.unixfs ? entry.unixfs.fileSize() : entry.size);
      }
    }
    if (!root) throw new Error(`publishing ${wwwDir} produced no root`);
    return { root, files, bytes };
  }

  /** Unpins roots past the newest `keepVersions` and collects their blocks. */
  private async prune(signal?: AbortSignal): Promise<void> {
    const old = this.versions().slice(this.o.keepVersions);
    if (old.length === 0) return;
    const { pins, lock, db, log } = this.o;
    await lock.exclusive(async () => {
      for (const v of old) {
        pins.unpin(CID.parse(v.root));
        db.prepare('DELETE FROM versions WHERE root = ?').run(v.root);
      }
      await pins.gc({ signal });
    });
    log.info(`unpinned ${old.length} old version(s) of the site and collected their blocks`, { service: 'ipfs' });
  }

  /** Republishes within a moment of any change under the folder. */
  watch(): void {
    if (this.watcher || this.closed) return;
    try {
      this.watcher = watch(this.o.wwwDir, { recursive: true }, () => this.changed());
      this.watcher.on('error', (err) => {
        this.o.log.warn(`watching ${this.o.wwwDir} failed (${err.message}); edits are picked up again once it is back`, { service: 'ipfs' });
        this.watcher?.close();
        this.watcher = undefined;
        this.retryWatch();
      });
    } catch (err) {
      this.o.log.warn(`cannot watch ${this.o.wwwDir}: ${(err as Error).message}; retrying every 5 s`, { service: 'ipfs' });
      this.retryWatch();
    }
  }

  private retryWatch(): void {
    if (this.closed) return;
    setTimeout(() => {
      this.watch();
      if (this.watcher) this.changed();
    }, 5000).unref();
  }

  private changed(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.publish().catch((err: Error) => {
        this.o.log.error(`republishing ${this.o.wwwDir} failed: ${err.message}; the last root stays published`, { service: 'ipfs' });
        this.emit('error', err);
      });
    }, this.o.debounceMs ?? 300);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
    await this.running?.catch(() => undefined);
  }
}
