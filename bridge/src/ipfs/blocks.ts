import type { Helia } from '@helia/interface';
import type { CID } from 'multiformats/cid';

/**
 * The bridge's view of its block storage: whole blocks, never the network. The node has no block
 * brokers (createHeliaLight), so a block is either here or missing; `offline` makes that explicit
 * instead of waiting for a broker that does not exist.
 */
export interface Blocks {
  /** The block's bytes; throws BlockMissingError when it is not stored here. */
  get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  has(cid: CID, options?: { signal?: AbortSignal }): Promise<boolean>;
  /** Stores a block the caller has already verified against its CID. */
  put(cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  delete(cid: CID, options?: { signal?: AbortSignal }): Promise<void>;
}

export class BlockMissingError extends Error {
  readonly cid: CID;
  constructor(cid: CID) {
    super(`block ${cid} is not stored on this bridge`);
    this.name = 'BlockMissingError';
    this.cid = cid;
  }
}

/** Blocks backed by a Helia node's blockstore, strictly offline. */
export function heliaBlocks(helia: Pick<Helia, 'blockstore'>): Blocks {
  const bs = helia.blockstore;
  return {
    async get(cid, options) {
      if (!(await bs.has(cid, options))) throw new BlockMissingError(cid);
      const chunks: Uint8Array[] = [];
      let length = 0;
      for await (const c of bs.get(cid, { ...options, offline: true })) {
        chunks.push(c);
        length += c.byteLength;
      }
      if (chunks.length === 1) return chunks[0]!;
      const out = new Uint8Array(length);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
      return out;
    },
    has: (cid, options) => Promise.resolve(bs.has(cid, options)),
    async put(cid, bytes, options) {
      await bs.put(cid, bytes, options);
    },
    async delete(cid, options) {
      await bs.delete(cid, options);
    },
  };
}
