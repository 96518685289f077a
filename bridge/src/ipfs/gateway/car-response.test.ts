import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CarBlockIterator, CarIndexer } from '@ipld/car';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { walkDag } from '../dag.js';
import { verifyBlock } from '../verify-block.js';
import { carBlockPrefix, carHeader } from '../car-encode.js';
import { addSite, fetch, readTree, removeDir, sha256, startGateway, type Gateway, type Site } from './test-support/fixture.js';

const run = promisify(execFile);
// The independent checker: ipfs-car's own CLI (CAR parsing, per-block hash check, UnixFS export).
const IPFS_CAR = join(process.cwd(), 'node_modules', 'ipfs-car', 'bin.js');
const CAR_TYPE = 'application/vnd.ipld.car; version=1; order=dfs; dups=n';

let gw: Gateway;
let site: Site;
let work: string;

beforeAll(async () => {
  expect(existsSync(IPFS_CAR)).toBe(true);
  gw = await startGateway();
  site = await addSite(gw.helia);
  work = await mkdtemp(join(tmpdir(), 'ipfs-gw-car-'));
});

afterAll(async () => {
  await gw?.close();
  if (site) await removeDir(site.dir);
  if (work) await removeDir(work);
});

beforeEach(() => {
  gw.blocks.missing.clear();
  gw.blocks.delayMs = 0;
  gw.served.length = 0;
  gw.errors.length = 0;
});

afterEach(() => expect(gw.errors).toEqual([]));

const cid = (p: string) => site.cids.get(p)!;
const get = (path: string, headers: Record<string, string> = {}) => fetch(gw.base, path, { headers });

async function parseCar(bytes: Uint8Array): Promise<{ roots: string[]; blocks: Array<{ cid: CID; bytes: Uint8Array }> }> {
  const it = await CarBlockIterator.fromBytes(bytes);
  const blocks: Array<{ cid: CID; bytes: Uint8Array }> = [];
  for await (const b of it) blocks.push({ cid: CID.decode(b.cid.bytes), bytes: b.bytes });
  return { roots: (await it.getRoots()).map(String), blocks };
}

async function unpack(name: string, car: Uint8Array): Promise<{ ok: true; out: string } | { ok: false; stderr: string }> {
  const file = join(work, `${name}.car`);
  const out = join(work, `${name}-out`);
  await writeFile(file, car);
  try {
    await run(process.execPath, [IPFS_CAR, 'unpack', file, '--output', out]);
    return { ok: true, out };
  } catch (err) {
    return { ok: false, stderr: String((err as { stderr?: string }).stderr) };
  }
}

async function dagOrder(root: CID): Promise<string[]> {
  const order: string[] = [];
  for await (const b of walkDag(root, gw.blocks)) order.push(b.cid.toString());
  return order;
}

describe('CAR responses', () => {
  it('a directory CAR unpacks with ipfs-car to the original tree, byte for byte', async () => {
    const r = await get(`/ipfs/${site.root}?format=car`);
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    expect(r.headers['content-type']).toBe(CAR_TYPE);
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${site.root}.car"`);
    expect(r.headers['etag']).toBe(`"${site.root}.car"`);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['cache-control']).toBe('public, max-age=29030400, immutable');
    expect(r.headers['content-location']).toBeUndefined(); // ?format= already names it

    const result = await unpack('site', r.body);
    if (!result.ok) throw new Error(`ipfs-car rejected the CAR: ${result.stderr}`);
    const unpacked = await readTree(result.out);
    expect([...unpacked.keys()].sort()).toEqual([...site.files.keys()].sort());
    for (const [rel, bytes] of site.files) expect([rel, unpacked.get(rel)!.equals(bytes)]).toEqual([rel, true]);
  });

  it('has the root in its header and every block once, verified, in DFS link order', async () => {
    const r = await get(`/ipfs/${site.root}?format=car`);
    const car = await parseCar(r.body);
    expect(car.roots).toEqual([site.root.toString()]);
    for (const b of car.blocks) verifyBlock(b.cid, b.bytes);
    const sent = car.blocks.map((b) => b.cid.toString());
    expect(sent).toEqual(await dagOrder(site.root));
    expect(new Set(sent).size).toBe(sent.length);
    // the big file is a tree of several levels, so the order above is a real DFS check
    const bigBlocks = await dagOrder(cid('big.bin'));
    expect(bigBlocks.filter((c) => CID.parse(c).code === raw.code)).toHaveLength(5);
    expect(bigBlocks.length).toBeGreaterThan(6);
    expect(gw.served.map((s) => s.cid.toString())).toEqual(sent);
  });

  it('a flipped byte inside a block makes ipfs-car reject the CAR', async () => {
    const r = await get(`/ipfs/${site.root}?format=car`);
    const leaf = (await dagOrder(cid('big.bin'))).find((c) => CID.parse(c).code === raw.code)!;
    let at = -1;
    for await (const e of (await CarIndexer.fromBytes(r.body)) as AsyncIterable<{ cid: { toString(): string }; blockOffset: number }>) {
      if (e.cid.toString() === leaf) at = e.blockOffset + 1000;
    }
    expect(at).toBeGreaterThan(0);
    const bad = Buffer.from(r.body);
    bad[at] = bad[at]! ^ 0x01;
    const result = await unpack('corrupt', bad);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.stderr).toMatch(/hash does not match|HashMismatch/i);
  });

  it('a CAR for a path carries the path blocks, then the terminal DAG', async () => {
    const r = await get(`/ipfs/${site.root}/sub/nested.txt?format=car`);
    expect(r.status).toBe(200);
    expect(r.headers['etag']).toBe(`"${cid('sub/nested.txt')}.car"`);
    expect(r.headers['x-ipfs-roots']).toBe(`${site.root},${cid('sub')},${cid('sub/nested.txt')}`);
    const car = await parseCar(r.body);
    expect(car.roots).toEqual([cid('sub/nested.txt').toString()]);
    expect(car.blocks.map((b) => b.cid.toString())).toEqual([site.root, cid('sub'), cid('sub/nested.txt')].map(String));
    const big = await parseCar((await get(`/ipfs/${site.root}/big.bin?format=car`)).body);
    expect(big.blocks.map((b) => b.cid.toString())).toEqual([site.root.toString(), ...(await dagOrder(cid('big.bin')))]);
  });

  it('dag-scope=block and entity limit what follows the path', async () => {
    const block = await get(`/ipfs/${site.root}/sub?format=car&dag-scope=block`);
    expect(block.headers['etag']).toBe(`"${cid('sub')}.block.car"`);
    expect((await parseCar(block.body)).blocks.map((b) => b.cid.toString())).toEqual([site.root, cid('sub')].map(String));
    const dirEntity = await get(`/ipfs/${site.root}/sub?format=car&dag-scope=entity`);
    expect((await parseCar(dirEntity.body)).blocks.map((b) => b.cid.toString())).toEqual([site.root, cid('sub')].map(String));
    const fileEntity = await get(`/ipfs/${site.root}/big.bin?format=car&dag-scope=entity`);
    expect((await parseCar(fileEntity.body)).blocks.map((b) => b.cid.toString())).toEqual([site.root.toString(), ...(await dagOrder(cid('big.bin')))]);
  });

  it('refuses unknown dag-scope, entity-bytes and CAR variants it cannot produce', async () => {
    for (const q of ['dag-scope=everything', 'entity-bytes=0:10', 'car-dups=y', 'car-version=2', 'car-order=weird']) {
      const r = await get(`/ipfs/${site.root}?format=car&${q}`);
      expect([q, r.status]).toEqual([q, 400]);
    }
  });

  it('answers If-None-Match with 304 and no body', async () => {
    const r = await get(`/ipfs/${site.root}?format=car`, { 'If-None-Match': `"${site.root}.car"` });
    expect(r.status).toBe(304);
    expect(r.body.byteLength).toBe(0);
    expect(gw.served).toEqual([]);
  });

  it('404s before any body when the root block is missing', async () => {
    gw.blocks.missing.add(site.root.toString());
    for (const format of ['car', 'raw']) {
      const r = await get(`/ipfs/${site.root}?format=${format}`);
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.body.toString()).toContain('is not stored on this bridge');
    }
  });

  it('cuts the connection when a block is missing mid-stream, never ending a short CAR', async () => {
    const leaf = (await dagOrder(cid('big.bin'))).filter((c) => CID.parse(c).code === raw.code)[2]!;
    gw.blocks.missing.add(leaf);
    const r = await get(`/ipfs/${site.root}?format=car`);
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(gw.errors).toHaveLength(1);
    expect(gw.errors[0]!.message).toMatch(new RegExp(`cut short.*${leaf}`));
    gw.errors.length = 0;
  });
});

describe('content negotiation', () => {
  it('serves a CAR for Accept: application/vnd.ipld.car, naming ?format=car in Content-Location', async () => {
    const r = await get(`/ipfs/${site.root}/sub/?x=1`, { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(CAR_TYPE);
    expect(r.headers['content-location']).toBe(`/ipfs/${site.root}/sub/?x=1&format=car`);
    expect(r.headers['vary']).toBe('Accept');
  });

  it('follows q values, and lets ?format= win over Accept', async () => {
    const preferRaw = await get(`/ipfs/${cid('hello.txt')}`, { Accept: 'application/vnd.ipld.car;q=0.5, application/vnd.ipld.raw;q=0.9' });
    expect(preferRaw.headers['content-type']).toBe('application/vnd.ipld.raw');
    const preferCar = await get(`/ipfs/${cid('hello.txt')}`, { Accept: 'application/vnd.ipld.raw;q=0.1, application/vnd.ipld.car' });
    expect(preferCar.headers['content-type']).toBe(CAR_TYPE);
    const formatWins = await get(`/ipfs/${cid('hello.txt')}?format=raw`, { Accept: 'application/vnd.ipld.car' });
    expect(formatWins.headers['content-type']).toBe('application/vnd.ipld.raw');
    const browser = await get(`/ipfs/${cid('hello.txt')}`, { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(browser.body.toString()).toBe('hello, world\n');
  });

  it('406s an Accept it can only refuse, and 400s an unsupported format', async () => {
    const dups = await get(`/ipfs/${site.root}`, { Accept: 'application/vnd.ipld.car; dups=y' });
    expect(dups.status).toBe(406);
    expect(dups.body.toString()).toMatch(/dups=y/);
    const tar = await get(`/ipfs/${site.root}`, { Accept: 'application/x-tar' });
    expect(tar.status).toBe(406);
    for (const format of ['tar', 'dag-json', 'ipns-record']) {
      const r = await get(`/ipfs/${site.root}?format=${format}`);
      expect(r.status).toBe(400);
      expect(r.body.toString()).toContain(`format=${format} is not supported`);
      expect(r.body.toString()).toContain('format=raw');
      expect(r.body.toString()).toContain('format=car');
    }
  });
});

describe('raw blocks', () => {
  it('serves the block that hashes to the CID', async () => {
    const big = cid('big.bin');
    const r = await get(`/ipfs/${big}?format=raw`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/vnd.ipld.raw');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${big}.bin"`);
    expect(r.headers['etag']).toBe(`"${big}.raw"`);
    expect(r.headers['content-length']).toBe(String(r.body.byteLength));
    expect(sha256(r.body).equals(Buffer.from(big.multihash.digest))).toBe(true);
    expect(gw.served.map((s) => [s.cid.toString(), s.bytes])).toEqual([[big.toString(), r.body.byteLength]]);
  });

  it('serves the terminal block of a path, and names ?format=raw when chosen by Accept', async () => {
    const r = await get(`/ipfs/${site.root}/sub/nested.txt`, { Accept: 'application/vnd.ipld.raw' });
    expect(r.headers['content-type']).toBe('application/vnd.ipld.raw');
    expect(r.body.toString()).toBe('nested\n'); // a raw leaf: the block is the file
    expect(r.headers['content-location']).toBe(`/ipfs/${site.root}/sub/nested.txt?format=raw`);
  });

  it('answers the identity probe bafkqaaa as raw, CAR and file', async () => {
    const rawR = await get('/ipfs/bafkqaaa?format=raw');
    expect([rawR.status, rawR.body.byteLength]).toEqual([200, 0]);
    const carR = await get('/ipfs/bafkqaaa?format=car');
    expect(carR.status).toBe(200);
    const car = await parseCar(carR.body);
    expect(car.roots).toEqual(['bafkqaaa']);
    expect(car.blocks).toEqual([]);
    const file = await get('/ipfs/bafkqaaa');
    expect([file.status, file.body.byteLength]).toEqual([200, 0]);
    expect(gw.served).toEqual([]);
  });
});

describe('other codecs', () => {
  it('serves a dag-cbor block raw or as a one-block CAR, and 501s what needs UnixFS or a DAG walk', async () => {
    const bytes = new Uint8Array([0xa1, 0x61, 0x61, 0x01]); // dag-cbor {"a": 1}
    const digest = sha256(bytes);
    const cbor = CID.createV1(0x71, { code: 0x12, size: 32, digest, bytes: new Uint8Array([0x12, 0x20, ...digest]) });
    await gw.blocks.put(cbor, bytes);
    const rawR = await get(`/ipfs/${cbor}?format=raw`);
    expect(rawR.status).toBe(200);
    expect(Buffer.from(bytes).equals(rawR.body)).toBe(true);
    const block = await get(`/ipfs/${cbor}?format=car&dag-scope=block`);
    expect(block.status).toBe(200);
    expect((await parseCar(block.body)).blocks.map((b) => b.cid.toString())).toEqual([cbor.toString()]);
    const all = await get(`/ipfs/${cbor}?format=car`);
    expect(all.status).toBe(501);
    expect(all.body.toString()).toMatch(/codec 0x71/);
    const page = await get(`/ipfs/${cbor}`);
    expect(page.status).toBe(501);
    expect(page.body.toString()).toMatch(/UnixFS/);
  });
});

describe('streaming', () => {
  it('stops walking the DAG when the client disconnects mid-CAR', async () => {
    const total = (await dagOrder(site.root)).length;
    gw.blocks.delayMs = 15;
    const before = gw.blocks.gets;
    await new Promise<void>((resolve, reject) => {
      const { hostname, port } = new URL(gw.base);
      const req = request({ hostname, port, path: `/ipfs/${site.root}?format=car`, agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e) => (e.message === 'socket hang up' || /aborted/.test(e.message) ? undefined : reject(e)));
      req.end();
    });
    await new Promise((r) => setTimeout(r, 150));
    const after = gw.blocks.gets - before;
    await new Promise((r) => setTimeout(r, 150));
    expect(gw.blocks.gets - before).toBe(after); // nothing read once the client left
    expect(after).toBeLessThan(total / 2);
    gw.blocks.delayMs = 0;
    const next = await get(`/ipfs/${site.root}/hello.txt`);
    expect(next.status).toBe(200);
  });

  it('waits for a slow client instead of reading ahead, and completes when it reads again', async () => {
    // A unix socket: small fixed kernel buffers, unlike loopback TCP's autotuned megabytes.
    const sock = join(work, 'gw.sock');
    const server = createServer(gw.handler);
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const total = (await dagOrder(site.root)).length;
      const before = gw.blocks.gets;
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = request({ socketPath: sock, path: `/ipfs/${site.root}?format=car`, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
          res.pause();
          void (async () => {
            let last = -1;
            while (gw.blocks.gets !== last) {
              last = gw.blocks.gets;
              await new Promise((r) => setTimeout(r, 100));
            }
            try {
              expect(gw.blocks.gets - before).toBeLessThan(total); // stalled before the end
            } catch (e) {
              reject(e as Error);
            }
            res.resume();
          })();
        });
        req.on('error', reject);
        req.end();
      });
      const car = await parseCar(body);
      expect(car.blocks.map((b) => b.cid.toString())).toEqual(await dagOrder(site.root));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('CAR encoding', () => {
  it('writes the header and block framing that @ipld/car reads', async () => {
    const block = new TextEncoder().encode('abc');
    const c = CID.createV1(raw.code, { code: 0x12, size: 32, digest: sha256(block), bytes: new Uint8Array([0x12, 0x20, ...sha256(block)]) });
    const bytes = Buffer.concat([carHeader(c), carBlockPrefix(c, block.byteLength), block]);
    const car = await parseCar(bytes);
    expect(car.roots).toEqual([c.toString()]);
    expect(car.blocks.map((b) => [b.cid.toString(), Buffer.from(b.bytes).toString()])).toEqual([[c.toString(), 'abc']]);
  });
});
