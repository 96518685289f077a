import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Helia } from '@helia/interface';
import { unixfs } from '@helia/unixfs';
import type Database from 'better-sqlite3';
import { createLogger } from '../log/logger.js';
import { openIpfsDb } from './ipfs-db.js';
import { openIpfsNode, type IpfsNode } from './ipfs-node.js';
import { PinStore } from './pins.js';
import { heliaBlocks } from './blocks.js';
import { Publisher, type Published } from './publisher.js';
import { StorageLock } from './storage-lock.js';

const log = createLogger({ level: 'error' });

describe('Publisher', () => {
  let dir: string;
  let www: string;
  let helia: Helia;
  let node: IpfsNode;
  let pins: PinStore;
  let db: Database.Database;
  let pub: Publisher | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'publisher-'));
    www = join(dir, 'www');
    mkdirSync(join(www, 'sub'), { recursive: true });
    writeFileSync(join(www, 'index.html'), '<h1>v1</h1>');
    writeFileSync(join(www, 'sub', 'page.html'), 'page');
    node = await openIpfsNode(join(dir, 'ipfs'));
    helia = node.helia;
    db = openIpfsDb(join(dir, 'ipfs'));
    pins = new PinStore(db, heliaBlocks(helia), node.stored);
  });

  afterEach(async () => {
    await pub?.close();
    pub = undefined;
    await helia.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const make = (keepVersions = 3) => (pub = new Publisher({ helia, store: node.store, pins, wwwDir: www, lock: new StorageLock(), db, keepVersions, log, debounceMs: 100 }));

  async function cat(root: Published['root'], path: string): Promise<string> {
    const chunks: Uint8Array[] = [];
    for await (const c of unixfs(helia).cat(root, { path, offline: true })) chunks.push(c);
    return Buffer.concat(chunks).toString();
  }

  it('adds the folder as CIDv1 UnixFS wrapped in a directory, pinned as own content', async () => {
    const p = make();
    const r = await p.publish();
    expect(r.root.version).toBe(1);
    expect(r).toMatchObject({ changed: true, files: 2, bytes: 15 });
    expect(await cat(r.root, 'index.html')).toBe('<h1>v1</h1>');
    expect(await cat(r.root, 'sub/page.html')).toBe('page');
    expect(pins.list().map((x) => [x.root.toString(), x.kind])).toEqual([[r.root.toString(), 'own']]);
    // A file's leaf is a raw block (raw leaves), not dag-pb.
    const st = await unixfs(helia).stat(r.root, { path: 'index.html', offline: true });
    expect(st.cid.code).toBe(0x55);
  });

  it('gives the same root for the same content, and remembers it across a restart', async () => {
    const first = await make().publish();
    const again = await pub!.publish();
    expect(again.root.equals(first.root)).toBe(true);
    expect(again.changed).toBe(false);
    await pub!.close();
    expect(make().current()?.equals(first.root)).toBe(true);
  });

  it('republishes within 5 s of an edit', async () => {
    const p = make();
    const first = await p.publish();
    p.watch();
    const next = new Promise<Published>((resolve) => p.on('published', resolve));
    const t0 = Date.now();
    writeFileSync(join(www, 'sub', 'page.html'), 'page, edited');
    const r = await next;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.changed).toBe(true);
    expect(r.root.equals(first.root)).toBe(false);
    expect(await cat(r.root, 'sub/page.html')).toBe('page, edited');
  });

  it('keeps the newest versions pinned and collects the blocks only older ones used', async () => {
    const p = make(2);
    const v1 = await p.publish();
    const onlyV1 = (await unixfs(helia).stat(v1.root, { path: 'index.html', offline: true })).cid;
    writeFileSync(join(www, 'index.html'), '<h1>v2</h1>');
    const v2 = await p.publish();
    expect(await helia.blockstore.has(onlyV1)).toBe(true);
    writeFileSync(join(www, 'index.html'), '<h1>v3</h1>');
    const v3 = await p.publish();
    expect(p.versions().map((v) => v.root)).toEqual([v3.root.toString(), v2.root.toString()]);
    expect(pins.get(v1.root)).toBeUndefined();
    expect(await helia.blockstore.has(onlyV1)).toBe(false);
    expect(await helia.blockstore.has(v1.root)).toBe(false);
    // Shared blocks (the unchanged sub/page.html) stay, and v2 still reads whole.
    expect(await cat(v2.root, 'sub/page.html')).toBe('page');
    expect(await cat(v2.root, 'index.html')).toBe('<h1>v2</h1>');
  });

  it('says what to do when WWW_DIR is missing', async () => {
    rmSync(www, { recursive: true });
    await expect(make().publish()).rejects.toThrow(/WWW_DIR .* is not a folder: create it/);
  });
});
