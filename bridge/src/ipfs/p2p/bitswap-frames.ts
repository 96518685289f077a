// Splits one length-prefixed bitswap message into one message per block, so a throttled peer can be
// sent its blocks one at a time. @helia/bitswap puts every block a peer wants into ONE message (a whole
// DAG layer, megabytes), and the receiving peer aborts a stream on which a message takes longer than its
// messageReceiveTimeout (10 s) to arrive: a message cannot be trickled out slowly, so the pacer holds
// whole blocks back instead, each sent at full speed on a stream of its own (see paced-stream.ts).
//
// No schema is needed: BitswapMessage's top-level fields are independent, repeated fields concatenate
// (protobuf semantics), and field 3 (`payload`, one Block each) and field 2 (legacy raw blocks) are the
// blocks. Everything else (wantlist, block presences, pendingBytes) is small and goes in a control part.

/** BitswapMessage field numbers that carry block data. */
const BLOCK_FIELDS = new Set([2, 3]);

export interface BitswapParts {
  /** Wantlist, block presences and the rest, length-prefixed; undefined when the message has none. */
  control: Uint8Array | undefined;
  /** One length-prefixed message per block, in order. */
  blocks: Uint8Array[];
}

/**
 * The parts of `frame`, one length-prefixed BitswapMessage (as bitswap hands it to `stream.send`), or
 * undefined when it is not exactly one well-formed frame (the caller then sends it whole).
 */
export function splitBitswapFrame(frame: Uint8Array): BitswapParts | undefined {
  const head = readVarint(frame, 0);
  if (!head || head.end + head.value !== frame.length) return undefined;
  const control: Uint8Array[] = [];
  const blocks: Uint8Array[] = [];
  let at = head.end;
  while (at < frame.length) {
    const start = at;
    const tag = readVarint(frame, at);
    if (!tag) return undefined;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    at = tag.end;
    if (wire === 0) {
      const v = readVarint(frame, at);
      if (!v) return undefined;
      at = v.end;
    } else if (wire === 2) {
      const len = readVarint(frame, at);
      if (!len || len.end + len.value > frame.length) return undefined;
      at = len.end + len.value;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      return undefined; // groups (3, 4) are not used by bitswap
    }
    if (at > frame.length || field === 0) return undefined;
    (BLOCK_FIELDS.has(field) && wire === 2 ? blocks : control).push(frame.subarray(start, at));
  }
  return { control: control.length > 0 ? lengthPrefixed(control) : undefined, blocks: blocks.map((b) => lengthPrefixed([b])) };
}

function lengthPrefixed(fields: Uint8Array[]): Uint8Array {
  const size = fields.reduce((n, f) => n + f.length, 0);
  const prefix = encodeVarint(size);
  const out = new Uint8Array(prefix.length + size);
  out.set(prefix, 0);
  let at = prefix.length;
  for (const f of fields) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** An unsigned varint at `at`; undefined if truncated or longer than a safe integer allows. */
function readVarint(buf: Uint8Array, at: number): { value: number; end: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 8; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value, end: i + 1 };
    scale *= 128;
  }
  return undefined;
}

export function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}
