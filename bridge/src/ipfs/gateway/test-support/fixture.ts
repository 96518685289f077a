// Shared by the gateway tests: a Helia node on memory stores, a real HTTP server on port 0 running
// the gateway, and an HTTP client that reports whether a body arrived complete.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Helia } from '@helia/interface';
import { globSource, unixfs } from '@helia/unixfs';
import { MemoryBlockstore } from 'blockstore-core';
import { MemoryDatastore } from 'datastore-core';
import { createHeliaLight } from 'helia';
// Test-only imports of @helia/unixfs's own importer (a transitive dependency), for its chunker and layout.
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import type { CID } from 'multiformats/cid';
import { BlockMissingError, heliaBlocks, type Blocks } from '../../blocks.js';
import { createIpfsGateway } from '../ipfs-gateway.js';

export const BIG_SIZE = 1_300_000; // > 1 MiB: five full 256 KiB leaves and a partial one

/** The files of the test site, relative path → bytes. Directories are implied by the paths. */
export function siteFiles(): Map<string, Buffer> {
  return new Map<string, Buffer>([
    ['hello.txt', Buffer.from('hello, world\n')],
    ['page.html', Buffer.from('<!doctype html><h1>hi</h1>\n')],
    ['blob.zzzunknown', Buffer.from('who knows\n')],
    ['big.bin', randomBytes(BIG_SIZE)],
    ['empty.txt', Buffer.alloc(0)],
    ['a b.txt', Buffer.from('space\n')],
    ['weird <&>"\'name.txt', Buffer.from('escaped?\n')],
    ['sub/nested.txt', Buffer.from('nested\n')],
    ['sub/deeper/x.json', Buffer.from('{"x":1}\n')],
    ['site/index.html', Buffer.from('<!doctype html><title>site</title>\n')],
    ['site/style.css', Buffer.from('body{}\n')],
  ]);
}

export async function writeTree(dir: string, files: Map<string, Buffer>): Promise<void> {
  for (const [rel, bytes] of files) {
    const full = join(dir, rel);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, bytes);
  }
}

/** Every file under `dir`, relative path → bytes, for byte-for-byte comparison. */
export async function readTree(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await readTree(dir, rel)) out.set(k, v);
    else out.set(rel, await readFile(join(dir, rel)));
  }
  return out;
}

export interface Site {
  root: CID;
  /** CID of every added path ('sub', 'sub/nested.txt', ...). */
  cids: Map<string, CID>;
  files: Map<string, Buffer>;
  dir: string;
}

export async function addSite(helia: Helia, files = siteFiles()): Promise<Site> {
  const dir = await mkdtemp(join(tmpdir(), 'ipfs-gw-site-'));
  await writeTree(dir, files);
  const cids = new Map<string, CID>();
  let root: CID | undefined;
  for await (const r of unixfs(helia).addAll(globSource(dir, '**/*'), {
    wrapWithDirectory: true,
    cidVersion: 1,
    // 256 KiB leaves (@helia/unixfs now defaults to 1 MiB) and at most 4 links per node, so the
    // big file is a three-level tree: DFS order and partial reads get something to get wrong.
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 4 }),
    rawLeaves: true,
  })) {
    const p = r.path?.replace(/^\//, '') ?? '';
    if (p === '') root = r.cid;
    else cids.set(p, r.cid);
  }
  if (!root) throw new Error('addAll produced no root');
  return { root, cids, files, dir };
}

/** Blocks with knobs for the tests: pretend some are missing, slow every read down, count reads. */
export interface TestBlocks extends Blocks {
  missing: Set<string>;
  delayMs: number;
  gets: number;
}

export function testBlocks(inner: Blocks): TestBlocks {
  const tb: TestBlocks = {
    missing: new Set(),
    delayMs: 0,
    gets: 0,
    async get(cid, options) {
      tb.gets++;
      if (tb.delayMs > 0) await new Promise((r) => setTimeout(r, tb.delayMs));
      if (tb.missing.has(cid.toString())) throw new BlockMissingError(cid);
      return inner.get(cid, options);
    },
    async has(cid, options) {
      return !tb.missing.has(cid.toString()) && (await inner.has(cid, options));
    },
    put: (cid, bytes, options) => inner.put(cid, bytes, options),
    delete: (cid, options) => inner.delete(cid, options),
  };
  return tb;
}

export interface Gateway {
  helia: Helia;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  blocks: TestBlocks;
  base: string;
  server: Server;
  roots: CID[];
  served: Array<{ cid: CID; bytes: number }>;
  errors: Error[];
  close(): Promise<void>;
}

export async function startGateway(): Promise<Gateway> {
  const helia = createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() });
  await helia.start();
  const blocks = testBlocks(heliaBlocks(helia));
  const roots: CID[] = [];
  const served: Array<{ cid: CID; bytes: number }> = [];
  const errors: Error[] = [];
  const handler = createIpfsGateway({
    blocks,
    onRootRequested: (cid) => roots.push(cid),
    onBlockServed: (cid, bytes) => served.push({ cid, bytes }),
    onError: (err) => errors.push(err),
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    helia,
    handler,
    blocks,
    base: `http://127.0.0.1:${port}`,
    server,
    roots,
    served,
    errors,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await helia.stop();
    },
  };
}

export interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** False when the connection ended before the body did (e.g. a CAR cut short). */
  complete: boolean;
}

export function fetch(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    // host/port/path rather than a URL string: a URL would resolve `..` before the gateway sees it.
    const { hostname, port } = new URL(base);
    const req = request({ hostname, port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(true));
      res.on('error', () => finish(false));
      res.on('aborted', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
