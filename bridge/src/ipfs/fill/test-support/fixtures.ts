// Test fixtures for fill: real Helia nodes on memory stores, real UnixFS DAGs, CARs written by @ipld/car,
// and a real HTTP server playing a peer bridge (its top list and its gateway's CARs).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Helia } from '@helia/interface';
import { CarWriter } from '@ipld/car/writer';
import * as dagPb from '@ipld/dag-pb';
import { MemoryBlockstore } from 'blockstore-core';
import { MemoryDatastore } from 'datastore-core';
import { createHeliaLight } from 'helia';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { createLogger, type Logger } from '../../../log/logger.js';
import { heliaBlocks } from '../../blocks.js';
import { walkDag, type DagBlock } from '../../dag.js';

export async function memoryHelia(): Promise<Helia> {
  const helia = createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() });
  await helia.start();
  return helia;
}

/** Deterministic bytes, different for each seed. */
export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export interface TestDag {
  root: CID;
  content: Uint8Array;
  /** DFS order, root first: what the gateway's CAR holds. */
  blocks: DagBlock[];
  bytes: number;
}

/**
 * Adds `content` to `helia` as a UnixFS file of raw leaves of `chunk` bytes under one dag-pb root (balanced
 * enough for tests), and returns its blocks in CAR order.
 */
export async function addFile(helia: Helia, content: Uint8Array, chunk = 1024): Promise<TestDag> {
  const links: dagPb.PBLink[] = [];
  const file = new UnixFS({ type: 'file' });
  for (let at = 0; at < content.length; at += chunk) {
    const leaf = content.subarray(at, at + chunk);
    const cid = CID.createV1(raw.code, await sha256.digest(leaf));
    await helia.blockstore.put(cid, leaf);
    links.push({ Hash: cid, Tsize: leaf.length, Name: '' });
    file.addBlockSize(BigInt(leaf.length));
  }
  const rootBytes = dagPb.encode(dagPb.prepare({ Data: file.marshal(), Links: links }));
  const root = CID.createV1(dagPb.code, await sha256.digest(rootBytes));
  await helia.blockstore.put(root, rootBytes);
  const blocks: DagBlock[] = [];
  for await (const b of walkDag(root, heliaBlocks(helia))) blocks.push(b);
  return { root, content, blocks, bytes: blocks.reduce((n, b) => n + b.bytes.byteLength, 0) };
}

/** A CAR v1 with these roots and blocks, as one buffer. */
export async function carOf(roots: CID[], blocks: Iterable<{ cid: CID; bytes: Uint8Array }>): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(roots);
  const collected = (async () => {
    const chunks: Uint8Array[] = [];
    for await (const c of out) chunks.push(c);
    return Buffer.concat(chunks);
  })();
  for (const b of blocks) await writer.put(b);
  await writer.close();
  return collected;
}

export function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** A top-list entry as a peer sends it, for `dag`. */
export function topEntry(dag: TestDag, count: number, over: Partial<Record<'dagSize' | 'blocks' | 'cid', unknown>> = {}): Record<string, unknown> {
  return { cid: dag.root.toString(), count, dagSize: dag.bytes, blocks: dag.blocks.length, kind: 'root', ...over };
}

/** What the fake gateway does for one CID. */
export type CarReply =
  | { car: Uint8Array; chunk?: number } // sent in chunks of `chunk` bytes
  | { stallAfter: number; car: Uint8Array } // sends that many bytes, then nothing
  | { trickle: Uint8Array; everyMs: number; chunk?: number } // `chunk` bytes (default 1) every `everyMs`, never ending
  | { status: number; body?: string; type?: string };

export interface FakePeerOptions {
  /** The JSON body of /v1/ipfs/top (or a raw string), or 'stall' to never answer. */
  top: unknown;
  cars?: Record<string, CarReply>;
}

export interface FakePeer {
  port: number;
  /** Paths requested, in order. */
  requests: string[];
  /** The Accept header of each request, in order. */
  accepts: string[];
  close(): Promise<void>;
}

export async function startPeer(opts: FakePeerOptions): Promise<FakePeer> {
  const requests: string[] = [];
  const accepts: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://peer');
    requests.push(`${url.pathname}${url.search}`);
    accepts.push(req.headers.accept ?? '');
    if (url.pathname === '/v1/ipfs/top') {
      if (opts.top === 'stall') return;
      const body = typeof opts.top === 'string' ? opts.top : JSON.stringify(opts.top);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const m = /^\/ipfs\/([^/]+)$/.exec(url.pathname);
    const reply = m ? opts.cars?.[m[1]!] : undefined;
    if (!reply) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if ('status' in reply) {
      res.writeHead(reply.status, { 'content-type': reply.type ?? 'text/plain' }).end(reply.body ?? '');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' });
    if ('trickle' in reply) {
      let i = 0;
      const step = reply.chunk ?? 1;
      const t = setInterval(() => {
        if (i < reply.trickle.length) res.write(reply.trickle.subarray(i, (i += step)));
      }, reply.everyMs);
      timers.add(t);
      res.once('close', () => clearInterval(t));
      return;
    }
    if ('stallAfter' in reply) {
      res.write(reply.car.subarray(0, reply.stallAfter));
      return;
    }
    const chunk = reply.chunk ?? 64 * 1024;
    for (let at = 0; at < reply.car.length; at += chunk) res.write(reply.car.subarray(at, at + chunk));
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    accepts,
    close: async () => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A valid-looking v3 onion name per letter, for peers in tests. */
export const onion = (c: string): string => `${c.repeat(56)}.onion`;

/** A logger that keeps its messages (real winston, JSON lines into memory). */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(String((JSON.parse(chunk.toString('utf8')) as { message: unknown }).message));
      done();
    },
  });
  return { log: createLogger({ level: 'info', json: true, stream }), lines };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
