import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { globSource } from '@helia/unixfs';
import { MemoryBlockstore } from 'blockstore-core';
import { importer } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { CID } from 'multiformats/cid';
import { verifyBlock } from '../verify-block.js';
import { readSiteTree } from './site-tree.js';
import { DEFAULT_LAYOUT, NeedsShardingError, UnixfsWriter, type Layout } from './unixfs-writer.js';

/** The reference: @helia/unixfs's addAll, i.e. ipfs-unixfs-importer with the same layout. */
async function importerRoot(dir: string, layout: Layout): Promise<CID> {
  let root: CID | undefined;
  const opts = {
    wrapWithDirectory: true,
    cidVersion: 1 as const,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: layout.chunkSize }),
    layout: balanced({ maxChildrenPerNode: layout.maxChildrenPerNode }),
    shardSplitThresholdBytes: layout.shardSplitThresholdBytes,
  };
  for await (const e of importer(globSource(dir, '**/*'), new MemoryBlockstore(), opts)) if (e.path === '') root = e.cid;
  return root!;
}

async function writerRoot(dir: string, layout: Layout) {
  const blocks = new Map<string, Uint8Array>();
  const writer = new UnixfsWriter({ put: async (cid, bytes) => void blocks.set(cid.toString(), bytes) }, layout);
  const root = await writer.directory(await readSiteTree(dir));
  return { root, blocks, stats: writer.stats };
}

function site(): string {
  const dir = mkdtempSync(join(tmpdir(), 'writer-'));
  mkdirSync(join(dir, 'a', 'b', 'c'), { recursive: true });
  mkdirSync(join(dir, 'empty-folder'));
  mkdirSync(join(dir, '.hidden-folder'));
  writeFileSync(join(dir, '.hidden-folder', 'secret'), 'not published');
  writeFileSync(join(dir, '.env'), 'SEED=not published');
  writeFileSync(join(dir, 'index.html'), '<h1>hi</h1>');
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'one-byte'), 'x');
  writeFileSync(join(dir, 'a', 'ünïcødé name.txt'), 'names are UTF-8');
  // Exactly one leaf, one byte more, several leaves, and enough leaves for two levels of file nodes.
  writeFileSync(join(dir, 'a', 'exact.bin'), Buffer.alloc(4096, 1));
  writeFileSync(join(dir, 'a', 'b', 'plus-one.bin'), Buffer.alloc(4097, 2));
  writeFileSync(join(dir, 'a', 'b', 'c', 'several.bin'), Buffer.from(Array.from({ length: 3 * 4096 + 17 }, (_, i) => i % 251)));
  writeFileSync(join(dir, 'a', 'deep.bin'), Buffer.from(Array.from({ length: 40 * 4096 + 5 }, (_, i) => (i * 7) % 253)));
  symlinkSync(join(dir, 'index.html'), join(dir, 'link-to-index.html'));
  return dir;
}

describe('UnixfsWriter', () => {
  // Small leaves and few links per node, so that multi-level files stay small in a test.
  const small: Layout = { chunkSize: 4096, maxChildrenPerNode: 4, shardSplitThresholdBytes: 262_144 };

  it('gives the same root as the Helia importer, block for block, on awkward trees', async () => {
    const dir = site();
    for (const layout of [small, DEFAULT_LAYOUT]) {
      const mine = await writerRoot(dir, layout);
      expect(mine.root.toString()).toBe((await importerRoot(dir, layout)).toString());
      for (const [cid, bytes] of mine.blocks) verifyBlock(CID.parse(cid), bytes);
    }
  });

  it('counts files and bytes, without the hidden ones', async () => {
    const { stats } = await writerRoot(site(), small);
    expect(stats.files).toBe(9);
    expect(stats.bytes).toBe(11 + 0 + 1 + 15 + 4096 + 4097 + 3 * 4096 + 17 + 40 * 4096 + 5 + 11);
  });

  it('refuses a folder that would need HAMT sharding, so the caller can use the importer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'writer-wide-'));
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, `file-${i}.txt`), String(i));
    await expect(writerRoot(dir, { ...small, shardSplitThresholdBytes: 1000 })).rejects.toBeInstanceOf(NeedsShardingError);
    // And the importer does shard there: a different root than a flat folder would have.
    expect((await importerRoot(dir, { ...small, shardSplitThresholdBytes: 1000 })).toString()).not.toBe((await writerRoot(dir, small)).root.toString());
  });
});
