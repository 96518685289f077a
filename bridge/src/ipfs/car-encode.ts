// CAR v1 framing, written by the gateway (a CAR response) and by fill (blocks fetched over bitswap,
// handed to the same checks as a CAR from a peer's gateway).
import { createWriter, headerLength } from '@ipld/car/buffer-writer';
import { varint } from 'multiformats';
import type { CID } from 'multiformats/cid';

/** The CARv1 header: varint length, then dag-cbor `{ roots: [root], version: 1 }`. */
export function carHeader(root: CID): Uint8Array {
  const roots = [root];
  const size = headerLength({ roots });
  return createWriter(new ArrayBuffer(size), { roots, headerSize: size }).close();
}

/** What precedes a block's bytes in a CARv1: varint(|cid| + |data|) then the CID's bytes. */
export function carBlockPrefix(cid: CID, dataLength: number): Uint8Array {
  const cidBytes = cid.bytes;
  const total = cidBytes.byteLength + dataLength;
  const out = new Uint8Array(varint.encodingLength(total) + cidBytes.byteLength);
  varint.encodeTo(total, out, 0);
  out.set(cidBytes, out.byteLength - cidBytes.byteLength);
  return out;
}
