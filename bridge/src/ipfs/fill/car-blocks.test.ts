import type { Helia } from '@helia/interface';
import { carBlocks, MAX_BLOCK_BYTES } from './car-blocks.js';
import { PeerFault } from './errors.js';
import { addFile, bytesOf, carOf, memoryHelia, varint, type TestDag } from './test-support/fixtures.js';

async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(src: AsyncIterable<{ cid: { toString(): string } }>): Promise<string[]> {
  const out: string[] = [];
  for await (const b of src) out.push(b.cid.toString());
  return out;
}

async function fault(p: Promise<unknown>): Promise<PeerFault> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PeerFault);
  return err as PeerFault;
}

describe('carBlocks', () => {
  let helia: Helia;
  let dag: TestDag;
  let car: Uint8Array;
  beforeAll(async () => {
    helia = await memoryHelia();
    dag = await addFile(helia, bytesOf(5000, 1), 1000);
    car = await carOf([dag.root], dag.blocks);
  });
  afterAll(() => helia.stop());

  it('yields the blocks in order whatever the chunking, and counts every byte', async () => {
    let counted = 0;
    const got = await collect(carBlocks(chunks(car, 1), dag.root, { peer: 'p', maxBytes: car.length, onBytes: (n) => (counted += n) }));
    expect(got).toEqual(dag.blocks.map((b) => b.cid.toString()));
    expect(counted).toBe(car.length);
  });

  it('refuses an announced oversized block before reading it', async () => {
    const header = await carOf([dag.root], []);
    let pulled = 0;
    async function* hostile(): AsyncGenerator<Uint8Array> {
      yield header;
      yield varint(MAX_BLOCK_BYTES + 1024);
      // Were the length not checked up front, the decoder would keep pulling these to fill its buffer.
      for (;;) {
        pulled += 65536;
        yield new Uint8Array(65536);
      }
    }
    const f = await fault(collect(carBlocks(hostile(), dag.root, { peer: 'evil.onion', maxBytes: 1e12 })));
    expect(f.kind).toBe('oversized');
    expect(f.message).toMatch(/evil\.onion announced a block of \d+ bytes; the limit is/);
    expect(pulled).toBe(0);
  });

  it('refuses an oversized header', async () => {
    const f = await fault(collect(carBlocks(chunks(Uint8Array.from([...varint(1 << 20), 1, 2, 3]), 4), dag.root, { peer: 'p', maxBytes: 1e9 })));
    expect(f.kind).toBe('oversized');
    expect(f.message).toMatch(/a CAR header of 1048576 bytes/);
  });

  it('stops at maxBytes', async () => {
    const f = await fault(collect(carBlocks(chunks(car, 100), dag.root, { peer: 'p', maxBytes: car.length - 1, overLimit: 'too much' })));
    expect(f.kind).toBe('oversized');
    expect(f.message).toBe(`p sent ${dag.root} with too much (its CAR passed ${car.length - 1} bytes)`);
  });

  it('refuses a CAR for another root', async () => {
    const other = await addFile(helia, bytesOf(100, 2));
    const f = await fault(collect(carBlocks(chunks(await carOf([other.root], other.blocks), 512), dag.root, { peer: 'p', maxBytes: 1e9 })));
    expect(f.kind).toBe('incomplete');
    expect(f.message).toContain(`sent a CAR for ${other.root} when asked for ${dag.root}`);
  });

  it('reports a CAR cut in the middle of a block as incomplete, and garbage as malformed', async () => {
    const cut = await fault(collect(carBlocks(chunks(car.subarray(0, car.length - 10), 512), dag.root, { peer: 'p', maxBytes: 1e9 })));
    expect(cut.kind).toBe('incomplete');
    expect(cut.message).toMatch(/ended early/);
    const junk = await fault(collect(carBlocks(chunks(Uint8Array.from([5, 0xff, 0xff, 0xff, 0xff, 0xff, 9, 9]), 8), dag.root, { peer: 'p', maxBytes: 1e9 })));
    expect(junk.kind).toBe('bad-response');
    expect(junk.message).toMatch(/malformed CAR/);
  });

  it('passes an abort reason through, and reports a broken stream otherwise', async () => {
    const ac = new AbortController();
    const reason = new Error('stalled here');
    async function* breaks(): AsyncGenerator<Uint8Array> {
      yield car.subarray(0, 50);
      ac.abort(reason);
      throw new Error('socket destroyed');
    }
    await expect(collect(carBlocks(breaks(), dag.root, { peer: 'p', maxBytes: 1e9, signal: ac.signal }))).rejects.toBe(reason);
    const f = await fault(collect(carBlocks(breaks(), dag.root, { peer: 'p', maxBytes: 1e9 })));
    expect(f.kind).toBe('incomplete');
    expect(f.message).toMatch(/broke off: socket destroyed/);
  });
});
