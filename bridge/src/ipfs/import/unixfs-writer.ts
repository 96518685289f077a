import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import * as Digest from 'multiformats/hashes/digest';
import type { SiteDir, SiteEntry } from './site-tree.js';

/** Where finished blocks go. Each block is complete and hashed when put. */
export interface BlockSink {
  put(cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
}

/** The shape of the DAG: the same as @helia/unixfs's addAll defaults (Filecoin's), so roots match. */
export interface Layout {
  /** Leaf size. Default 1 MiB. */
  chunkSize: number;
  /** Links per file node before another level is added (balanced layout). Default 1024. */
  maxChildrenPerNode: number;
  /** A folder whose links would exceed this many bytes (name + CID) must be a HAMT shard. Default 256 KiB. */
  shardSplitThresholdBytes: number;
}

export const DEFAULT_LAYOUT: Layout = { chunkSize: 1_048_576, maxChildrenPerNode: 1024, shardSplitThresholdBytes: 262_144 };

/** A folder large enough to need HAMT sharding, which this writer does not build. */
export class NeedsShardingError extends Error {
  constructor() {
    super('a folder has too many entries for one directory block');
    this.name = 'NeedsShardingError';
  }
}

interface Node {
  cid: CID;
  /** The DAG's cumulative size, as the importer puts in Tsize. */
  size: number;
  /** File bytes (files only). */
  fileSize: number;
}

export interface WriteStats {
  files: number;
  bytes: number;
  blocks: number;
}

const SHA2_256 = 0x12;

function sha256Cid(code: number, bytes: Uint8Array): CID {
  return CID.createV1(code, Digest.create(SHA2_256, createHash('sha256').update(bytes).digest()));
}

/**
 * Builds UnixFS (CIDv1, raw leaves, balanced layout) for a site tree and writes its blocks. A
 * straight path instead of ipfs-unixfs-importer's stream of generators: node:crypto hashing, whole
 * reads of small files, and several files in flight, so that publishing stays close to the speed of
 * hashing the bytes (bench/ipfs). The tests check it against the importer, root for root.
 */
export class UnixfsWriter {
  readonly stats: WriteStats = { files: 0, bytes: 0, blocks: 0 };

  constructor(
    private readonly sink: BlockSink,
    private readonly layout: Layout = DEFAULT_LAYOUT,
    private readonly signal?: AbortSignal,
    private readonly concurrency = 8,
  ) {}

  /** The directory node for `dir`, wrapping its whole tree. */
  async directory(dir: SiteDir): Promise<CID> {
    return (await this.dir(dir)).cid;
  }

  private async dir(dir: SiteDir): Promise<Node> {
    const entries = [...dir.children];
    // Files of this folder in parallel, a bounded number at once; subfolders one after another.
    const results = new Array<Node>(entries.length);
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const i = next++;
        const [, entry] = entries[i]!;
        if (entry.kind === 'file') results[i] = await this.file(entry);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, entries.length) }, worker));
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]![1] as SiteEntry;
      if (entry.kind === 'dir') results[i] = await this.dir(entry);
    }
    let estimate = 0;
    const links = entries.map(([name, _], i) => {
      const n = results[i]!;
      estimate += Buffer.byteLength(name) + n.cid.bytes.byteLength;
      return { Name: name, Hash: n.cid, Tsize: n.size };
    });
    if (estimate > this.layout.shardSplitThresholdBytes) throw new NeedsShardingError();
    const block = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links }));
    const cid = await this.write(dagPb.code, block);
    return { cid, size: block.byteLength + links.reduce((a, l) => a + l.Tsize, 0), fileSize: 0 };
  }

  private async file(f: { path: string; size: number }): Promise<Node> {
    this.signal?.throwIfAborted();
    this.stats.files++;
    const chunk = this.layout.chunkSize;
    if (f.size <= chunk) {
      // One leaf, which is the file itself (reduceSingleLeafToSelf).
      const bytes = await readFile(f.path, { signal: this.signal });
      // The file grew since it was listed: read it in leaves after all.
      if (bytes.byteLength > chunk) return this.chunked(f.path, true);
      this.stats.bytes += bytes.byteLength;
      const cid = await this.write(raw.code, bytes);
      return { cid, size: bytes.byteLength, fileSize: bytes.byteLength };
    }
    return this.chunked(f.path, true);
  }

  /** A file of several leaves: read a leaf at a time, then the balanced tree of file nodes above them. */
  private async chunked(path: string, countBytes: boolean): Promise<Node> {
    const fh = await open(path, 'r');
    const leaves: Node[] = [];
    // Leaves are written while the next is read and hashed: up to a few writes in flight per file.
    const pending = new Set<Promise<void>>();
    try {
      for (;;) {
        this.signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(this.layout.chunkSize);
        let filled = 0;
        while (filled < buf.byteLength) {
          const { bytesRead } = await fh.read(buf, filled, buf.byteLength - filled, null);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        if (filled === 0) break;
        const leaf = buf.subarray(0, filled);
        if (countBytes) this.stats.bytes += filled;
        const node = { cid: sha256Cid(raw.code, leaf), size: filled, fileSize: filled };
        leaves.push(node);
        const w = this.put(node.cid, leaf).finally(() => pending.delete(w));
        pending.add(w);
        if (pending.size >= 4) await Promise.race(pending);
        if (filled < buf.byteLength) break;
      }
      await Promise.all(pending);
    } finally {
      await Promise.allSettled(pending);
      await fh.close();
    }
    if (leaves.length === 1) return leaves[0]!; // the file shrank to one leaf while being read
    let level = leaves;
    while (level.length > 1) {
      const up: Node[] = [];
      for (let i = 0; i < level.length; i += this.layout.maxChildrenPerNode) up.push(await this.fileNode(level.slice(i, i + this.layout.maxChildrenPerNode)));
      level = up;
    }
    return level[0]!;
  }

  private async fileNode(children: Node[]): Promise<Node> {
    const f = new UnixFS({ type: 'file' });
    const links = children
      .filter((c) => c.fileSize > 0)
      .map((c) => {
        f.addBlockSize(BigInt(c.fileSize));
        return { Name: '', Hash: c.cid, Tsize: c.size };
      });
    const block = dagPb.encode(dagPb.prepare({ Data: f.marshal(), Links: links }));
    const cid = await this.write(dagPb.code, block);
    return { cid, size: block.byteLength + links.reduce((a, l) => a + l.Tsize, 0), fileSize: children.reduce((a, c) => a + c.fileSize, 0) };
  }

  private async write(code: number, bytes: Uint8Array): Promise<CID> {
    const cid = sha256Cid(code, bytes);
    await this.put(cid, bytes);
    return cid;
  }

  private async put(cid: CID, bytes: Uint8Array): Promise<void> {
    await this.sink.put(cid, bytes, { signal: this.signal });
    this.stats.blocks++;
  }
}
