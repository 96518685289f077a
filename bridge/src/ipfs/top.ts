import type { CID } from 'multiformats/cid';
import { BlockMissingError, type Blocks } from './blocks.js';
import { dagSize, parseCid, UnsupportedCodecError } from './dag.js';
import type { CidKind, Popularity } from './popularity.js';

/** One line of `GET /v1/ipfs/top`: what a peer needs to decide whether to fill it. */
export interface TopEntry {
  cid: string;
  kind: CidKind;
  /** Requests, decayed (IPFS_HALF_LIFE_HOURS). */
  count: number;
  /** The sum of the DAG's block sizes: what filling it costs. */
  dagSize: number;
  blocks: number;
}

/**
 * The top N that this bridge can actually serve: a CID requested here but not stored (or only in
 * part) is left out, so a peer never plans to fill what would fail. DAG sizes never change for a
 * CID, so they are cached.
 */
export class TopList {
  private readonly sizes = new Map<string, { bytes: number; blocks: number }>();

  constructor(private readonly o: { popularity: Popularity; blocks: Blocks; maxCached?: number }) {}

  async top(n: number, kind?: CidKind, signal?: AbortSignal): Promise<TopEntry[]> {
    const out: TopEntry[] = [];
    for (const e of this.o.popularity.ranked(kind)) {
      if (out.length >= n) break;
      const cid = parseCid(e.cid);
      if (!cid) continue;
      const size = await this.size(cid, signal);
      if (size) out.push({ cid: e.cid, kind: e.kind, count: Math.round(e.count * 1000) / 1000, dagSize: size.bytes, blocks: size.blocks });
    }
    return out;
  }

  private async size(cid: CID, signal?: AbortSignal): Promise<{ bytes: number; blocks: number } | undefined> {
    const key = cid.toString();
    const known = this.sizes.get(key);
    if (known) return known;
    try {
      const s = await dagSize(cid, this.o.blocks, { signal });
      if (this.sizes.size >= (this.o.maxCached ?? 50_000)) this.sizes.clear();
      this.sizes.set(key, s);
      return s;
    } catch (err) {
      // Not (wholly) here: not cached, since a fill may bring it later.
      if (err instanceof BlockMissingError || err instanceof UnsupportedCodecError) return undefined;
      throw err;
    }
  }
}
