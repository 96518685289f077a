// splitBitswapFrame on hand-built protobuf frames: the control fields and each block come apart intact.
import { encodeVarint, splitBitswapFrame } from './bitswap-frames.js';

function field(no: number, body: Uint8Array): Uint8Array {
  return concat(encodeVarint((no << 3) | 2), encodeVarint(body.length), body);
}
function varintField(no: number, v: number): Uint8Array {
  return concat(encodeVarint(no << 3), encodeVarint(v));
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const frame = (...fields: Uint8Array[]) => {
  const body = concat(...fields);
  return concat(encodeVarint(body.length), body);
};
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('splitBitswapFrame', () => {
  const wantlist = field(1, bytes(10, 1));
  const block1 = field(3, concat(field(1, bytes(4, 2)), field(2, bytes(300, 3))));
  const block2 = field(3, concat(field(1, bytes(4, 4)), field(2, bytes(200_000, 5))));
  const presence = field(4, bytes(40, 6));
  const pending = varintField(5, 123_456);

  it('puts each block in a frame of its own and the rest in one control frame', () => {
    const parts = splitBitswapFrame(frame(wantlist, block1, presence, block2, pending))!;
    expect(parts.blocks).toEqual([frame(block1), frame(block2)]);
    expect(parts.control).toEqual(frame(wantlist, presence, pending));
  });

  it('has no control frame for blocks alone, and no blocks for a wantlist alone', () => {
    expect(splitBitswapFrame(frame(block1))).toEqual({ control: undefined, blocks: [frame(block1)] });
    expect(splitBitswapFrame(frame(wantlist))).toEqual({ control: frame(wantlist), blocks: [] });
  });

  it('counts the legacy raw blocks field (2) as blocks too', () => {
    const legacy = field(2, bytes(1000, 7));
    expect(splitBitswapFrame(frame(legacy, wantlist))).toEqual({ control: frame(wantlist), blocks: [frame(legacy)] });
  });

  it('refuses what is not exactly one well-formed frame', () => {
    const good = frame(wantlist, block1);
    expect(splitBitswapFrame(good.subarray(0, good.length - 1))).toBeUndefined(); // truncated
    expect(splitBitswapFrame(concat(good, good))).toBeUndefined(); // two frames
    expect(splitBitswapFrame(frame(concat(encodeVarint((3 << 3) | 2), encodeVarint(5000), bytes(10, 0))))).toBeUndefined(); // length past the end
    expect(splitBitswapFrame(frame(concat(encodeVarint((9 << 3) | 3))))).toBeUndefined(); // a group
    expect(splitBitswapFrame(new Uint8Array([0xff, 0xff]))).toBeUndefined();
  });
});
