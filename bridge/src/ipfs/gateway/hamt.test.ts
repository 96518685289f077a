// HAMT-sharded directories: the one place where resolving a name reads blocks that are not
// themselves path segments (the shard buckets), which a CAR for that path must still carry.
import { unixfs } from '@helia/unixfs';
import * as dagPb from '@ipld/dag-pb';
import { CarBlockIterator } from '@ipld/car';
import { MemoryBlockstore } from 'blockstore-core';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import { walkDag } from '../dag.js';
import { fetch, startGateway, type Gateway } from './test-support/fixture.js';

const COUNT = 300; // enough names that some 8-bit buckets collide and get sub-shards

let gw: Gateway;
let root: CID;
let hamt: CID;
const content = (i: number) => new TextEncoder().encode(`file number ${i}\n`);
const name = (i: number) => `f-${String(i).padStart(3, '0')}.txt`;

beforeAll(async () => {
  gw = await startGateway();
  const files = Array.from({ length: COUNT }, (_, i) => ({ path: `hamt/${name(i)}`, content: content(i) }));
  for await (const r of unixfs(gw.helia).addAll(files, { wrapWithDirectory: true, cidVersion: 1, rawLeaves: true, shardSplitThresholdBytes: 1 })) {
    if (r.path === 'hamt') hamt = r.cid;
    if (r.path === '') root = r.cid;
  }
});

afterAll(async () => {
  await gw?.close();
});

afterEach(() => expect(gw.errors).toEqual([]));

const get = (path: string) => fetch(gw.base, path);

async function carBlocks(path: string): Promise<Array<{ cid: CID; bytes: Uint8Array }>> {
  const r = await get(path);
  expect(r.status).toBe(200);
  const out: Array<{ cid: CID; bytes: Uint8Array }> = [];
  for await (const b of await CarBlockIterator.fromBytes(r.body)) out.push({ cid: CID.decode(b.cid.bytes), bytes: b.bytes });
  return out;
}

function unixfsType(cid: CID, bytes: Uint8Array): string | undefined {
  if (cid.code !== dagPb.code) return undefined;
  const data = dagPb.decode(bytes).Data;
  return data ? UnixFS.unmarshal(data).type : undefined;
}

/** Reads `path` under `root` with only the given blocks, through @helia/unixfs's own resolver. */
async function readWith(blocks: Array<{ cid: CID; bytes: Uint8Array }>, path: string): Promise<string> {
  const bs = new MemoryBlockstore();
  for (const b of blocks) await bs.put(b.cid, b.bytes);
  let text = '';
  for await (const chunk of unixfs({ blockstore: bs }).cat(root, { path, offline: true })) text += new TextDecoder().decode(chunk);
  return text;
}

it('is really sharded', async () => {
  const bytes = await gw.blocks.get(hamt);
  expect(unixfsType(hamt, bytes)).toBe('hamt-sharded-directory');
});

it('resolves names inside the shards, with one X-Ipfs-Roots entry per path segment', async () => {
  for (const i of [0, 7, 123, COUNT - 1]) {
    const r = await get(`/ipfs/${root}/hamt/${name(i)}`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(`file number ${i}\n`);
    const roots = String(r.headers['x-ipfs-roots']).split(',');
    expect(roots).toHaveLength(3);
    expect(roots.slice(0, 2)).toEqual([root.toString(), hamt.toString()]);
  }
  expect((await get(`/ipfs/${root}/hamt/f-999.txt`)).status).toBe(404);
});

it('lists every entry under its own name, without the bucket prefixes', async () => {
  const html = (await get(`/ipfs/${root}/hamt/`)).body.toString();
  const hrefs = [...html.matchAll(/href="\.\/([^"]+)"/g)].map((m) => m[1]);
  expect(hrefs.filter((h) => h !== '?format=car').sort()).toEqual(Array.from({ length: COUNT }, (_, i) => name(i)));
});

it('a CAR for a path through sub-shards carries exactly the blocks needed to verify it', async () => {
  let withSubShard = 0;
  for (let i = 0; i < 30 && withSubShard < 2; i++) {
    const blocks = await carBlocks(`/ipfs/${root}/hamt/${name(i)}?format=car`);
    expect(await readWith(blocks, `hamt/${name(i)}`)).toBe(`file number ${i}\n`);
    // root (itself a shard), the hamt root shard, maybe sub-shards, then the file
    if (blocks.length > 3) {
      withSubShard++;
      // every block is needed: without any one of them the path no longer resolves
      for (let drop = 0; drop < blocks.length; drop++) {
        const fewer = blocks.filter((_, k) => k !== drop);
        await expect(readWith(fewer, `hamt/${name(i)}`)).rejects.toThrow();
      }
    }
  }
  expect(withSubShard).toBeGreaterThan(0);
});

it('dag-scope=entity on a sharded directory sends all its shards and none of its entries', async () => {
  const blocks = await carBlocks(`/ipfs/${root}/hamt/?format=car&dag-scope=entity`);
  const afterPath = blocks.slice(blocks.findIndex((b) => b.cid.equals(hamt)));
  const shards: string[] = [];
  for await (const b of walkDag(hamt, gw.blocks)) if (unixfsType(b.cid, b.bytes) === 'hamt-sharded-directory') shards.push(b.cid.toString());
  expect(shards.length).toBeGreaterThan(1);
  expect(afterPath.map((b) => b.cid.toString())).toEqual(shards);
});
