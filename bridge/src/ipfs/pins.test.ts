import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unixfs } from '@helia/unixfs';
import type Database from 'better-sqlite3';
import { CID } from 'multiformats/cid';
import { BlockMissingError, heliaBlocks } from './blocks.js';
import { walkDag } from './dag.js';
import { openIpfsDb } from './ipfs-db.js';
import { openIpfsNode, type IpfsNode } from './ipfs-node.js';
import { PinStore } from './pins.js';

describe('PinStore on the FS blockstore', () => {
  let node: IpfsNode;
  let db: Database.Database;
  let pins: PinStore;

  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pins-'));
    node = await openIpfsNode(dir);
    db = openIpfsDb(dir);
    pins = new PinStore(db, heliaBlocks(node.helia), node.stored);
  });
  afterEach(async () => {
    await node.helia.stop();
    db.close();
  });

  const add = async (bytes: Uint8Array) => unixfs(node.helia).addBytes(bytes, { rawLeaves: true, cidVersion: 1, chunker: undefined });
  const big = (seed: number) => Buffer.alloc(1_200_000, `seed ${seed} `);

  it('pins a whole DAG, keeps it through gc, and collects it once unpinned', async () => {
    const a = await add(big(3));
    const b = await add(big(5));
    const blocksOfA: CID[] = [];
    for await (const blk of walkDag(a, heliaBlocks(node.helia))) blocksOfA.push(blk.cid);
    expect(blocksOfA.length).toBeGreaterThan(1);

    await pins.pin(a, 'own', { publishedAt: 1 });
    expect(blocksOfA.every((c) => pins.isPinned(c))).toBe(true);
    expect(pins.isPinned(b)).toBe(false);
    expect(pins.get(a)).toMatchObject({ kind: 'own', metadata: { publishedAt: 1 } });

    const first = await pins.gc();
    expect(first.deleted).toBeGreaterThan(0);
    expect(await node.store.has(b)).toBe(false);
    for (const c of blocksOfA) expect(await node.store.has(c)).toBe(true);

    pins.unpin(a);
    expect(pins.list()).toEqual([]);
    await pins.gc();
    for (const c of blocksOfA) expect(await node.store.has(c)).toBe(false);
  });

  it('keeps a block shared by two DAGs until both are unpinned', async () => {
    const shared = await add(Buffer.from('shared leaf'));
    const dir1 = await unixfs(node.helia).cp(shared, await unixfs(node.helia).addDirectory(), 'x.txt');
    const dir2 = await unixfs(node.helia).cp(shared, await unixfs(node.helia).addDirectory(), 'y.txt');
    await pins.pin(dir1, 'own');
    await pins.pin(dir2, 'filled', { peer: 'p.onion' });
    pins.unpin(dir1);
    await pins.gc();
    expect(await node.store.has(shared)).toBe(true);
    pins.unpin(dir2);
    await pins.gc();
    expect(await node.store.has(shared)).toBe(false);
  });

  it('never turns the site’s own pin into filled content', async () => {
    const a = await add(Buffer.from('own'));
    await pins.pin(a, 'own');
    await pins.pin(a, 'filled', { peer: 'p.onion' });
    expect(pins.get(a)?.kind).toBe('own');
    expect(pins.list('filled')).toEqual([]);
  });

  it('refuses to pin a DAG with a missing block, and survives a restart', async () => {
    const a = await add(big(7));
    const leaf = (await unixfs(node.helia).stat(a)).cid;
    await pins.pin(a, 'own');
    const again = new PinStore(db, heliaBlocks(node.helia), node.stored);
    expect(again.isPinned(leaf)).toBe(true);

    const b = await add(big(11));
    let aLeaf: CID | undefined;
    for await (const blk of walkDag(b, heliaBlocks(node.helia))) if (blk.cid.code === 0x55) aLeaf = blk.cid;
    await node.store.delete(aLeaf!);
    await expect(pins.pin(b, 'own')).rejects.toBeInstanceOf(BlockMissingError);
    expect(pins.get(b)).toBeUndefined();
  });
});
