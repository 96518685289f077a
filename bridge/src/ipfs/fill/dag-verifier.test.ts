import type { Helia } from '@helia/interface';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { DagVerifier } from './dag-verifier.js';
import { DagSkip, PeerFault } from './errors.js';
import { addFile, bytesOf, memoryHelia, type TestDag } from './test-support/fixtures.js';

describe('DagVerifier', () => {
  let helia: Helia;
  let dag: TestDag;
  let other: TestDag;
  beforeAll(async () => {
    helia = await memoryHelia();
    dag = await addFile(helia, bytesOf(3000, 3), 1000);
    other = await addFile(helia, bytesOf(500, 4), 1000);
  });
  afterAll(() => helia.stop());

  it('accepts a complete DAG, root first, and sums its blocks', () => {
    const v = new DagVerifier(dag.root, 'p');
    for (const b of dag.blocks) {
      expect(v.complete).toBe(false);
      expect(v.accept(b.cid, b.bytes)).toBe(true);
    }
    expect(v.complete).toBe(true);
    expect(() => v.finish()).not.toThrow();
    expect(v.bytes).toBe(dag.bytes);
    expect(v.blocks).toBe(4);
  });

  it('treats a repeated block as nothing new', () => {
    const v = new DagVerifier(dag.root, 'p');
    v.accept(dag.blocks[0]!.cid, dag.blocks[0]!.bytes);
    v.accept(dag.blocks[1]!.cid, dag.blocks[1]!.bytes);
    expect(v.accept(dag.blocks[1]!.cid, dag.blocks[1]!.bytes)).toBe(false);
    expect(v.blocks).toBe(2);
  });

  it('refuses a block whose bytes do not hash to its CID', () => {
    const v = new DagVerifier(dag.root, 'bad.onion');
    v.accept(dag.blocks[0]!.cid, dag.blocks[0]!.bytes);
    const leaf = dag.blocks[1]!;
    const flipped = Uint8Array.from(leaf.bytes);
    flipped[7]! ^= 1;
    expect(() => v.accept(leaf.cid, flipped)).toThrow(PeerFault);
    expect(() => v.accept(leaf.cid, flipped)).toThrow(`bad.onion sent a corrupt block: block ${leaf.cid} failed verification`);
  });

  it('refuses a block nothing links to, and a root that is not first', () => {
    const v = new DagVerifier(dag.root, 'p');
    expect(() => v.accept(dag.blocks[1]!.cid, dag.blocks[1]!.bytes)).toThrow(/is not part of/);
    v.accept(dag.blocks[0]!.cid, dag.blocks[0]!.bytes);
    expect(() => v.accept(other.blocks[0]!.cid, other.blocks[0]!.bytes)).toThrow(/is not part of/);
  });

  it('reports missing links at the end', () => {
    const v = new DagVerifier(dag.root, 'p');
    v.accept(dag.blocks[0]!.cid, dag.blocks[0]!.bytes);
    v.accept(dag.blocks[1]!.cid, dag.blocks[1]!.bytes);
    expect(() => v.finish()).toThrow(/lacks 2 linked blocks \(e\.g\. /);
    try {
      v.finish();
    } catch (err) {
      expect((err as PeerFault).kind).toBe('incomplete');
    }
  });

  it('skips (not blames) a DAG in a codec it cannot walk', async () => {
    const bytes = Uint8Array.from([0xa0]);
    const cbor = CID.createV1(0x71, await sha256.digest(bytes));
    const v = new DagVerifier(cbor, 'p');
    expect(() => v.accept(cbor, bytes)).toThrow(DagSkip);
  });
});
