import * as dagPb from '@ipld/dag-pb';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import type { Blocks } from './blocks.js';

export const DAG_PB = dagPb.code;
export const RAW = raw.code;
const IDENTITY = 0x00;

/** Raised for a block in a codec this bridge does not walk (it publishes only dag-pb and raw). */
export class UnsupportedCodecError extends Error {
  constructor(cid: CID) {
    super(`CID ${cid} uses codec 0x${cid.code.toString(16)}; this bridge serves only dag-pb and raw blocks`);
    this.name = 'UnsupportedCodecError';
  }
}

/** The CIDs a block links to, in link order (which is also UnixFS's byte order). */
export function linksOf(cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code === RAW) return [];
  if (cid.code === DAG_PB) return dagPb.decode(bytes).Links.map((l) => l.Hash);
  throw new UnsupportedCodecError(cid);
}

/** Identity CIDs carry their bytes inline: nothing to store, fetch or send as a block. */
export function isInline(cid: CID): boolean {
  return cid.multihash.code === IDENTITY;
}

export interface DagBlock {
  cid: CID;
  bytes: Uint8Array;
}

/**
 * The DAG under `root`, depth first in link order, each block once: the order of a CAR with
 * `order=dfs; dups=n`. Throws BlockMissingError when a block is not stored. Inline (identity)
 * blocks are followed but not yielded.
 */
export async function* walkDag(root: CID, blocks: Blocks, options: { signal?: AbortSignal } = {}): AsyncGenerator<DagBlock> {
  const seen = new Set<string>();
  const stack: CID[] = [root];
  while (stack.length > 0) {
    options.signal?.throwIfAborted();
    const cid = stack.pop()!;
    const key = cid.toString();
    if (seen.has(key)) continue;
    seen.add(key);
    const bytes = isInline(cid) ? cid.multihash.digest : await blocks.get(cid, options);
    const links = linksOf(cid, bytes);
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i]!);
    if (!isInline(cid)) yield { cid, bytes };
  }
}

/** Bytes and blocks of the DAG under `root`, as stored here. */
export async function dagSize(root: CID, blocks: Blocks, options: { signal?: AbortSignal } = {}): Promise<{ bytes: number; blocks: number }> {
  let bytes = 0;
  let count = 0;
  for await (const b of walkDag(root, blocks, options)) {
    bytes += b.bytes.byteLength;
    count++;
  }
  return { bytes, blocks: count };
}

/** Parses a CID from a path segment; undefined when it is not one. */
export function parseCid(text: string): CID | undefined {
  try {
    // base32 CIDv1 (bafy…) and base58 CIDv0 (Qm…) both parse without naming the base.
    return CID.parse(text);
  } catch {
    return undefined;
  }
}
