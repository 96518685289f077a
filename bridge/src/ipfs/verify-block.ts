import { createHash } from 'node:crypto';
import type { CID } from 'multiformats/cid';

const SHA2_256 = 0x12;
const IDENTITY = 0x00;

/** Raised for a block whose bytes do not hash to its CID; such a block is never stored. */
export class BlockHashMismatchError extends Error {
  readonly cid: CID;
  constructor(cid: CID, why: string) {
    super(`block ${cid} failed verification: ${why}`);
    this.name = 'BlockHashMismatchError';
    this.cid = cid;
  }
}

/** The hash functions this bridge can check; a CID with any other cannot be verified, so is refused. */
export function canVerify(cid: CID): boolean {
  return cid.multihash.code === SHA2_256 || cid.multihash.code === IDENTITY;
}

/**
 * Checks that `bytes` are the block `cid` names. node:crypto's sha256 rather than multiformats'
 * hasher: the same digest, without an async hop per block on the fill path.
 */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  const mh = cid.multihash;
  let digest: Uint8Array;
  if (mh.code === SHA2_256) digest = createHash('sha256').update(bytes).digest();
  else if (mh.code === IDENTITY) digest = bytes;
  else throw new BlockHashMismatchError(cid, `unsupported hash function 0x${mh.code.toString(16)}`);
  if (digest.byteLength !== mh.digest.byteLength || !Buffer.from(digest).equals(Buffer.from(mh.digest))) {
    throw new BlockHashMismatchError(cid, 'its bytes hash to a different digest');
  }
}
