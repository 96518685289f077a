// fill over libp2p: a peer found by its onion address alone. Its peer ID and libp2p address come from its
// API (GET /v1/ipfs/id over Tor); blocks come over bitswap on that connection, which is where the peer
// meters us and may ask us to pay. The blocks are framed as a CAR and handed to the same checks as a CAR
// from the peer's gateway (car-blocks.ts, dag-verifier.ts), so both paths store only verified DAGs.
// Peers without libp2p (no /v1/ipfs/id, or the dial fails) are served by the HTTP client instead.
import type { IncomingMessage } from 'node:http';
import type { Libp2p } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { CID } from 'multiformats/cid';
import { z } from 'zod';
import { httpRequest, readBody, type Transport } from '../../client/socks.js';
import { carBlockPrefix, carHeader } from '../car-encode.js';
import { isInline, linksOf } from '../dag.js';
import type { PeerClient } from './peer-client.js';

export interface PeerIdentity {
  id: string;
  multiaddrs: string[];
}

const idSchema = z.object({ id: z.string().min(10).max(200), multiaddrs: z.array(z.string().max(300)).max(20) });

export interface Libp2pPeerClientOptions {
  /** The HTTP client: top lists always, and CARs for peers without libp2p. */
  http: PeerClient;
  transport: Transport;
  libp2p: Pick<Libp2p, 'dial'>;
  /** A block by CID from the network (bitswap on the connections we hold), not only from our store. */
  getBlock: (cid: CID, options: { signal?: AbortSignal }) => Promise<Uint8Array>;
  apiPort?: number;
  urlFor?: (peer: string, port: number) => string;
  /** Blocks wanted at once: bitswap over Tor is latency-bound. Default 16. */
  window?: number;
  /** Told when a peer is fetched over HTTP instead, and why. */
  onFallback?: (peer: string, why: string) => void;
  /**
   * A block bitswap has not delivered within this long is fetched from the peer's gateway instead
   * (`?format=raw`; checked like every block). Bitswap does not send a block again once a message
   * carrying it was lost, so without this a fill could wait for it forever. Default 45 s: longer
   * than a throttled peer takes for a 1 MiB block at the default 32 KiB/s (so a throttle is not
   * dodged this way; the gateway meters and throttles too), shorter than fill's 60 s stall limit.
   */
  blockTimeoutMs?: number;
  /**
   * The signal that ends the wait for one block over bitswap: AbortSignal.timeout(blockTimeoutMs) by
   * default. Tests inject it, so "bitswap did not deliver" is an event, not a race against a clock.
   */
  blockDeadline?: (cid: CID, timeoutMs: number) => AbortSignal;
  gatewayPort?: number;
}

export function libp2pPeerClient(o: Libp2pPeerClientOptions): PeerClient & { identity(peer: string, signal?: AbortSignal): Promise<PeerIdentity | undefined> } {
  const urlFor = o.urlFor ?? ((peer: string, port: number) => `http://${peer}:${port}`);
  const connected = new Map<string, Promise<boolean>>();

  async function identity(peer: string, signal?: AbortSignal): Promise<PeerIdentity | undefined> {
    let res: IncomingMessage;
    try {
      res = await httpRequest(`${urlFor(peer, o.apiPort ?? 8000)}/v1/ipfs/id`, { transport: o.transport, signal, timeoutMs: 60_000, headers: { Accept: 'application/json' } });
    } catch {
      return undefined;
    }
    if (res.statusCode !== 200) {
      res.destroy();
      return undefined;
    }
    try {
      const parsed = idSchema.safeParse(JSON.parse((await readBody(res, 16 * 1024, 30_000)).toString('utf8')));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Dials the peer's libp2p address once per run; false sends this peer to the HTTP path. */
  function connect(peer: string, signal?: AbortSignal): Promise<boolean> {
    let p = connected.get(peer);
    if (!p) {
      p = (async () => {
        const id = await identity(peer, signal).catch(() => undefined);
        if (!id) {
          o.onFallback?.(peer, 'it has no /v1/ipfs/id (no libp2p)');
          return false;
        }
        const addrs: Multiaddr[] = id.multiaddrs.flatMap((a) => {
          try {
            return [multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${id.id}`)];
          } catch {
            return [];
          }
        });
        try {
          await o.libp2p.dial(addrs, { signal });
          return true;
        } catch (err) {
          o.onFallback?.(peer, `dialing ${id.multiaddrs[0] ?? 'it'} failed: ${(err as Error).message}`);
          return false;
        }
      })();
      connected.set(peer, p);
    }
    return p;
  }

  /** One block from the peer's gateway, as bytes; the caller verifies it like any other. */
  async function rawBlock(peer: string, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const res = await httpRequest(`${urlFor(peer, o.gatewayPort ?? 80)}/ipfs/${cid.toString()}?format=raw`, {
      transport: o.transport,
      signal,
      timeoutMs: 60_000,
      headers: { Accept: 'application/vnd.ipld.raw' },
    });
    if (res.statusCode !== 200) {
      res.destroy();
      throw new Error(`${peer} answered HTTP ${res.statusCode} for block ${cid}`);
    }
    return readBody(res, 4 * 1024 * 1024 + 1024, 60_000);
  }

  return {
    identity,
    top: (peer, n, options) => o.http.top(peer, n, options),
    async car(peer, root, options) {
      if (!(await connect(peer, options.signal))) return o.http.car(peer, root, options);
      const timeoutMs = o.blockTimeoutMs ?? 45_000;
      const getBlock = async (cid: CID, opts: { signal?: AbortSignal }): Promise<Uint8Array> => {
        const wait = o.blockDeadline ? o.blockDeadline(cid, timeoutMs) : AbortSignal.timeout(timeoutMs);
        try {
          return await o.getBlock(cid, { signal: opts.signal ? AbortSignal.any([opts.signal, wait]) : wait });
        } catch (err) {
          if (opts.signal?.aborted || !wait.aborted) throw err;
          o.onFallback?.(peer, `block ${cid} did not come over bitswap within ${timeoutMs} ms; fetching it from the gateway`);
          return rawBlock(peer, cid, opts.signal);
        }
      };
      return bitswapCar(root, getBlock, o.window ?? 16, options.signal);
    },
  };
}

/**
 * The DAG under `root` as CAR bytes: breadth first (every block after the block that links to it, as
 * the checks require), with up to `window` blocks wanted at once and yielded in order.
 */
async function* bitswapCar(root: CID, getBlock: Libp2pPeerClientOptions['getBlock'], window: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  yield carHeader(root);
  const queue: CID[] = [root];
  const seen = new Set<string>([root.toString()]);
  const inFlight: Array<{ cid: CID; bytes: Promise<Uint8Array> }> = [];
  let next = 0;
  const fill = () => {
    while (inFlight.length < window && next < queue.length) {
      const cid = queue[next++]!;
      const bytes = getBlock(cid, { signal });
      bytes.catch(() => {}); // awaited in order below; an early failure must not go unhandled meanwhile
      inFlight.push({ cid, bytes });
    }
  };
  fill();
  while (inFlight.length > 0) {
    const { cid, bytes: pending } = inFlight.shift()!;
    const bytes = await pending;
    for (const link of linksOf(cid, bytes)) {
      const key = link.toString();
      if (seen.has(key) || isInline(link)) continue;
      seen.add(key);
      queue.push(link);
    }
    fill();
    yield carBlockPrefix(cid, bytes.byteLength);
    yield bytes;
  }
}
