// Reads a CAR v1 stream from an untrusted peer. @ipld/car decodes it, but buffers a whole header or section
// before looking at it, so a peer could make us hold any amount of memory by announcing a huge one. A small
// guard in front of the decoder follows the CAR framing (a varint length, then that many bytes) and fails
// before the decoder asks for an oversized section. It also counts and caps the stream's bytes.
import { CarBlockIterator } from '@ipld/car/iterator';
import type { CID } from 'multiformats/cid';
import { abortReason } from '../../util/http-stream.js';
import { PeerFault } from './errors.js';

/** UnixFS chunks are ≤ 1 MiB and gateways refuse blocks over 2-4 MiB; nothing honest is larger. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024;
/** A CAR v1 header with one root is ~60 bytes. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** A CID's bytes in a section: version, codec and multihash prefix varints and a ≤ 64-byte digest. */
const MAX_CID_BYTES = 128;

export interface CarBlocksOptions {
  /** Peer name, for messages. */
  peer: string;
  /** The whole stream may not exceed this many bytes (declared DAG size + framing + slack). */
  maxBytes: number;
  /** Says what crossing maxBytes means, e.g. "more than the 1000 bytes it declared". */
  overLimit?: string;
  maxBlockBytes?: number;
  /** Called with the size of each chunk as it arrives (progress, stall watchdog). */
  onBytes?: (n: number) => void;
  /** The signal the stream was opened with: its abort reason is passed through unchanged. */
  signal?: AbortSignal;
}

export interface CarBlock {
  cid: CID;
  bytes: Uint8Array;
}

/**
 * The blocks of a CAR v1 whose only root is `root`, as they arrive. Throws PeerFault: 'oversized' for a
 * section or stream over the limits, 'incomplete' for a wrong root, 'bad-response' for bad framing. It does
 * not verify hashes or completeness (dag-verifier.ts does).
 */
export async function* carBlocks(source: AsyncIterable<Uint8Array>, root: CID, opts: CarBlocksOptions): AsyncGenerator<CarBlock> {
  const upstream = new Set<unknown>();
  const guarded = guardFraming(source, root, opts, upstream);
  let car: CarBlockIterator;
  try {
    car = await CarBlockIterator.fromIterable(guarded);
  } catch (err) {
    throw asPeerFault(err, opts.peer, root, upstream);
  }
  if (car.version !== 1) throw new PeerFault('bad-response', `${opts.peer} sent a CAR v${car.version} for ${root}; only CAR v1 is accepted`);
  const roots = await car.getRoots();
  if (roots.length !== 1 || !roots[0]!.equals(root)) {
    throw new PeerFault('incomplete', `${opts.peer} sent a CAR for ${roots.map(String).join(', ') || 'no root'} when asked for ${root}`);
  }
  try {
    for await (const block of car) yield { cid: block.cid as CID, bytes: block.bytes };
  } catch (err) {
    throw asPeerFault(err, opts.peer, root, upstream);
  }
}

/** The decoder's errors ("Unexpected end of data", bad CBOR) become PeerFaults naming the peer. */
function asPeerFault(err: unknown, peer: string, root: CID, upstream: Set<unknown>): unknown {
  // Errors from the stream itself or from the guard were already classified: pass them as they are.
  if (err instanceof PeerFault || upstream.has(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/Unexpected end of data/i.test(message)) {
    return new PeerFault('incomplete', `${peer}'s CAR for ${root} ended early, in the middle of a header or block`, { cause: err });
  }
  return new PeerFault('bad-response', `${peer} sent a malformed CAR for ${root}: ${message}`, { cause: err });
}

/**
 * Passes chunks through while following the framing: the header length, then each section's length, each
 * checked before the decoder would buffer it. Throws as soon as a limit is crossed.
 */
async function* guardFraming(source: AsyncIterable<Uint8Array>, root: CID, opts: CarBlocksOptions, upstream: Set<unknown>): AsyncGenerator<Uint8Array> {
  try {
    yield* frame(source, root, opts);
  } catch (err) {
    // An abort (stall, deadline, shutdown) surfaces as the stream's error: keep its reason.
    const out = opts.signal?.aborted
      ? abortReason(opts.signal)
      : err instanceof PeerFault
        ? err
        : new PeerFault('incomplete', `${opts.peer}'s CAR stream broke off: ${(err as Error).message}`, { cause: err });
    upstream.add(out);
    throw out;
  }
}

async function* frame(source: AsyncIterable<Uint8Array>, root: CID, opts: CarBlocksOptions): AsyncGenerator<Uint8Array> {
  const maxSection = (opts.maxBlockBytes ?? MAX_BLOCK_BYTES) + MAX_CID_BYTES;
  let total = 0;
  let skip = 0; // bytes of the current header/section still to pass
  let length = 0; // the varint being read
  let shift = 0;
  let header = true;
  for await (const chunk of source) {
    total += chunk.byteLength;
    opts.onBytes?.(chunk.byteLength);
    if (total > opts.maxBytes) {
      const what = opts.overLimit ?? 'more bytes than allowed';
      throw new PeerFault('oversized', `${opts.peer} sent ${root} with ${what} (its CAR passed ${opts.maxBytes} bytes)`);
    }
    let i = 0;
    while (i < chunk.byteLength) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.byteLength - i);
        skip -= n;
        i += n;
        continue;
      }
      const b = chunk[i++]!;
      length += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b & 0x80) {
        if (shift >= 35) throw new PeerFault('bad-response', `${opts.peer} sent a CAR with a malformed length varint`);
        continue;
      }
      const max = header ? MAX_HEADER_BYTES : maxSection;
      if (length > max) {
        const what = header ? 'a CAR header' : 'a block';
        throw new PeerFault('oversized', `${opts.peer} announced ${what} of ${length} bytes; the limit is ${max}`);
      }
      skip = length;
      header = false;
      length = 0;
      shift = 0;
    }
    yield chunk;
  }
}
