// Checks a CAR's blocks as they arrive, so that nothing false is ever stored: each block must hash to its
// CID, and must be the root or linked from a block already accepted (a CAR in DFS order, root first, always
// is). A peer therefore cannot pad a CAR with unrelated blocks, however well they hash. At the end every link
// must have arrived: a DAG with a hole would be served by our gateway as a broken file.
import type { CID } from 'multiformats/cid';
import { DAG_PB, RAW, UnsupportedCodecError, isInline, linksOf } from '../dag.js';
import { canVerify, verifyBlock, BlockHashMismatchError } from '../verify-block.js';
import { DagSkip, PeerFault } from './errors.js';

/** Identity CIDs nest their block inline; a chain of them deeper than this is an attack, not content. */
const MAX_INLINE_DEPTH = 16;

/** dag-pb and raw are all the bridge publishes and serves; anything else cannot be checked for completeness. */
export function checkFillable(cid: CID): void {
  if (cid.code !== DAG_PB && cid.code !== RAW) throw new DagSkip(`${cid} uses codec 0x${cid.code.toString(16)}; only dag-pb and raw DAGs are filled`);
  if (!canVerify(cid)) throw new DagSkip(`${cid} uses hash function 0x${cid.multihash.code.toString(16)}, which this bridge cannot verify`);
}

/** One key per block whatever the CID version: a CIDv0 link names the same block as its CIDv1 form. */
const keyOf = (cid: CID): string => cid.toV1().toString();

export class DagVerifier {
  /** Linked, not yet received. */
  private readonly wanted = new Map<string, CID>();
  private readonly received = new Set<string>();
  /** Sum of accepted block bytes. */
  bytes = 0;
  blocks = 0;

  constructor(
    readonly root: CID,
    private readonly peer: string,
  ) {
    this.wanted.set(keyOf(root), root);
  }

  /**
   * Checks one block. Returns false for a block already accepted (a repeat: nothing to store). Throws
   * PeerFault 'bad-block' for a block that is corrupt, malformed or not part of the DAG, DagSkip for a block
   * in a format this bridge cannot check.
   */
  accept(cid: CID, bytes: Uint8Array): boolean {
    const key = keyOf(cid);
    if (this.received.has(key)) return false;
    if (!this.wanted.has(key)) {
      throw new PeerFault('bad-block', `${this.peer} sent block ${cid}, which is not part of ${this.root} (no earlier block links to it)`);
    }
    checkFillable(cid);
    try {
      verifyBlock(cid, bytes);
    } catch (err) {
      if (err instanceof BlockHashMismatchError) throw new PeerFault('bad-block', `${this.peer} sent a corrupt block: ${err.message}`);
      throw err;
    }
    this.wanted.delete(key);
    this.received.add(key);
    this.bytes += bytes.byteLength;
    this.blocks++;
    this.expectLinks(cid, bytes, 0);
    return true;
  }

  /** Every linked block has arrived: nothing more to read. */
  get complete(): boolean {
    return this.wanted.size === 0;
  }

  /** Throws PeerFault 'incomplete' unless every linked block has arrived. */
  finish(): void {
    if (this.wanted.size === 0) return;
    const first = this.wanted.values().next().value!;
    const n = this.wanted.size;
    throw new PeerFault('incomplete', `${this.peer}'s CAR for ${this.root} lacks ${n} linked block${n === 1 ? '' : 's'} (e.g. ${first}); the peer's copy is incomplete`);
  }

  private expectLinks(cid: CID, bytes: Uint8Array, depth: number): void {
    let links: CID[];
    try {
      links = linksOf(cid, bytes);
    } catch (err) {
      if (err instanceof UnsupportedCodecError) throw new DagSkip(err.message);
      // The hash matched, so these are the bytes the CID names; they are just not valid dag-pb.
      throw new PeerFault('bad-block', `block ${cid} from ${this.peer} is not valid dag-pb: ${(err as Error).message}`);
    }
    for (const link of links) {
      if (isInline(link)) {
        // Nothing to fetch, but its own links are part of the DAG.
        if (depth >= MAX_INLINE_DEPTH) throw new PeerFault('bad-block', `${this.root} from ${this.peer} nests inline blocks more than ${MAX_INLINE_DEPTH} deep`);
        this.expectLinks(link, link.multihash.digest, depth + 1);
        continue;
      }
      const key = keyOf(link);
      if (!this.received.has(key)) this.wanted.set(key, link);
    }
  }
}
