// Test nodes: in-process Helia with libp2p over TCP on 127.0.0.1 (noise, yamux, identify, ping) and
// bitswap; memory stores. Nothing listens beyond loopback and nothing is dialled but these nodes.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { withBitswap, type BitswapOptions } from '@helia/bitswap';
import type { Helia } from '@helia/interface';
import { withLibp2pLight } from '@helia/libp2p';
import { identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { MemoryBlockstore } from 'blockstore-core';
import { MemoryDatastore } from 'datastore-core';
import { createHeliaLight } from 'helia';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';

export type TestNode = Helia & { libp2p: Libp2p<{ ping: Ping }> };

export async function testNode(bitswap: Partial<BitswapOptions> = {}): Promise<TestNode> {
  const h = withBitswap(
    withLibp2pLight(createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() }), {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() },
    }),
    bitswap,
  ) as unknown as TestNode;
  await h.start();
  return h;
}

/** Connects `from` to `to` and waits until each knows the other speaks bitswap (identify ran). */
export async function connect(from: TestNode, to: TestNode): Promise<void> {
  await from.libp2p.dial(to.libp2p.getMultiaddrs()[0]!);
  const deadline = Date.now() + 5000;
  for (;;) {
    const a = await from.libp2p.peerStore.get(to.libp2p.peerId).catch(() => undefined);
    const b = await to.libp2p.peerStore.get(from.libp2p.peerId).catch(() => undefined);
    if (a?.protocols.some((p) => p.startsWith('/ipfs/bitswap/')) && b?.protocols.some((p) => p.startsWith('/ipfs/bitswap/'))) return;
    if (Date.now() > deadline) throw new Error('identify did not complete within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `count` raw blocks of `size` distinct bytes each, stored on `node`. */
export async function putRawBlocks(node: TestNode, count: number, size: number, seed = 0): Promise<CID[]> {
  const cids: CID[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(size);
    for (let j = 0; j < size; j++) bytes[j] = (i * 7 + j * 13 + seed * 31) & 0xff;
    bytes[0] = i & 0xff;
    bytes[1] = (i >> 8) & 0xff;
    bytes[2] = seed & 0xff;
    const cid = CID.createV1(raw.code, await sha256.digest(bytes));
    await node.blockstore.put(cid, bytes);
    cids.push(cid);
  }
  return cids;
}

/** Fetches `cids` one after the other (one bitswap message each); returns the bytes fetched. */
export async function fetchEach(node: TestNode, cids: CID[], signal: AbortSignal): Promise<number> {
  let n = 0;
  for (const cid of cids) n += await blockSize(node, cid, signal);
  return n;
}

async function blockSize(node: TestNode, cid: CID, signal: AbortSignal): Promise<number> {
  let n = 0;
  for await (const chunk of node.blockstore.get(cid, { signal })) n += chunk.byteLength;
  return n;
}

/** Pings `peer` every `everyMs` until stopped; collects the results. */
export function keepPinging(node: TestNode, peer: TestNode, everyMs = 250): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let ok = 0;
  const failed: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await node.libp2p.services.ping.ping(peer.libp2p.peerId, { signal: AbortSignal.timeout(2000) });
        ok++;
      } catch (err) {
        failed.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

/**
 * For afterAll, once every node is stopped: libp2p's AddressManager leaves a 1 s debounce timer
 * behind on stop (libp2p 3.3.11), which would keep the jest worker alive past its exit.
 */
export function libp2pTimersDone(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1100));
}
