import type { unixfs } from '@helia/unixfs';
import type { CID } from 'multiformats/cid';
import type { Blocks } from '../blocks.js';
import type { DagBlock } from '../dag.js';
import { isInline } from '../dag.js';
import { ClientGoneError } from './errors.js';

/** What @helia/unixfs reads through. */
export type UnixfsBlockstore = Parameters<typeof unixfs>[0]['blockstore'];

export type BlockServed = (cid: CID, bytes: number) => void;

/**
 * One request's view of the block store. It exists for three reasons:
 * - every read of a deserialized response can be reported for popularity counting, but only once
 *   the request is known to send a body (not for HEAD, 304 or an error);
 * - the blocks read while resolving the path are kept, in read order: they are exactly the path
 *   blocks a CAR must start with, and keeping them avoids reading each directory twice;
 * - every read checks the request's abort signal, so a client that leaves stops the DAG walk.
 * Only path resolution keeps blocks (`stopKeeping`); file contents stream through without being held.
 */
export class RequestBlocks {
  private readonly kept = new Map<string, DagBlock>();
  private keeping = true;
  private report: BlockServed | undefined;

  constructor(
    private readonly blocks: Blocks,
    private readonly signal: AbortSignal,
  ) {}

  async get(cid: CID): Promise<Uint8Array> {
    if (this.signal.aborted) throw new ClientGoneError();
    // Identity CIDs carry their bytes; they are never stored, fetched or counted.
    if (isInline(cid)) return cid.multihash.digest;
    const key = cid.toString();
    const known = this.kept.get(key);
    if (known) return known.bytes;
    const bytes = await this.blocks.get(cid, { signal: this.signal });
    if (this.keeping) this.kept.set(key, { cid, bytes });
    else this.report?.(cid, bytes.byteLength);
    return bytes;
  }

  /** The blocks read so far (while resolving), in the order they were first read. */
  keptBlocks(): DagBlock[] {
    return [...this.kept.values()];
  }

  stopKeeping(): void {
    this.keeping = false;
  }

  /** From now on the response has a body: report what was kept, then every further read. */
  reportReads(onBlockServed: BlockServed | undefined): void {
    if (!onBlockServed || this.report) return;
    this.report = onBlockServed;
    for (const b of this.kept.values()) onBlockServed(b.cid, b.bytes.byteLength);
  }

  /** The shape @helia/unixfs reads through: `get` yields a block's bytes (a single chunk here). */
  asBlockstore(): UnixfsBlockstore {
    return {
      get: (cid: CID) => this.chunks(cid),
      has: (cid: CID) => (isInline(cid) ? true : this.blocks.has(cid, { signal: this.signal })),
      put: () => {
        // The gateway is read-only; @helia/unixfs only writes for mutations we never call.
        throw new Error('the IPFS gateway does not write blocks');
      },
    };
  }

  private async *chunks(cid: CID): AsyncGenerator<Uint8Array> {
    yield await this.get(cid);
  }

  /** The same reads as a `Blocks`, for walkDag. */
  asBlocks(): Blocks {
    return {
      get: (cid) => this.get(cid),
      has: (cid) => this.blocks.has(cid, { signal: this.signal }),
      put: () => Promise.reject(new Error('the IPFS gateway does not write blocks')),
      delete: () => Promise.reject(new Error('the IPFS gateway does not delete blocks')),
    };
  }
}
