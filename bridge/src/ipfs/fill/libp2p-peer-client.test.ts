import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unixfs } from '@helia/unixfs';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { CID } from 'multiformats/cid';
import { walkDag } from '../dag.js';
import { heliaBlocks } from '../blocks.js';
import { verifyBlock } from '../verify-block.js';
import { carBlocks } from './car-blocks.js';
import { libp2pPeerClient } from './libp2p-peer-client.js';
import { testNode, type TestNode } from '../p2p/test-support/nodes.js';
import type { PeerClient } from './peer-client.js';

type Node = TestNode;
const node = (): Promise<Node> => testNode();

async function collect(stream: AsyncIterable<Uint8Array>, root: CID): Promise<Array<{ cid: CID; bytes: Uint8Array }>> {
  const out = [];
  for await (const b of carBlocks(stream, root, { peer: 'a.onion', maxBytes: 50_000_000 })) out.push(b);
  return out;
}

describe('libp2pPeerClient: fill over bitswap, found by the peer API', () => {
  let a: Node;
  let b: Node;
  let api: Server;
  let idBody: string;
  const fallbacks: string[] = [];
  const rawRequests: string[] = [];
  const httpCalls: string[] = [];
  const http: PeerClient = {
    top: async () => [],
    car: async (peer, root) => {
      httpCalls.push(`${peer} ${root}`);
      return (async function* () {})();
    },
  };

  beforeAll(async () => {
    [a, b] = [await node(), await node()];
    api = createServer((req, res) => {
      const raw = /^\/ipfs\/(\w+)\?format=raw$/.exec(req.url ?? '');
      if (req.url === '/v1/ipfs/id' && idBody) res.writeHead(200, { 'content-type': 'application/json' }).end(idBody);
      else if (raw) {
        rawRequests.push(raw[1]!);
        void heliaBlocks(a).get(CID.parse(raw[1]!)).then((b) => res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' }).end(Buffer.from(b)));
      } else res.writeHead(404).end('no libp2p here');
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    api.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  /** CIDs bitswap "loses": their wants never come back, as when a message is dropped on the way. */
  const lost = new Set<string>();
  const client = () =>
    libp2pPeerClient({
      http,
      transport: { direct: true },
      libp2p: b.libp2p,
      blockTimeoutMs: 300,
      // The wait for a lost block ends at once; every other block may take as long as a loaded machine needs.
      blockDeadline: (cid) => (lost.has(cid.toString()) ? AbortSignal.abort() : new AbortController().signal),
      getBlock: async (cid, { signal }) => {
        if (lost.has(cid.toString())) {
          if (signal?.aborted) return Promise.reject(signal.reason as Error);
          return new Promise<Uint8Array>((_res, rej) => signal?.addEventListener('abort', () => rej(signal.reason as Error), { once: true }));
        }
        const chunks: Uint8Array[] = [];
        for await (const c of b.blockstore.get(cid, { signal })) chunks.push(c);
        return Buffer.concat(chunks);
      },
      urlFor: () => `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
      onFallback: (peer, why) => fallbacks.push(`${peer}: ${why}`),
    });

  it("dials the peer from its /v1/ipfs/id and streams the DAG as a CAR of verified blocks, parents first", async () => {
    idBody = JSON.stringify({ id: a.libp2p.peerId.toString(), multiaddrs: a.libp2p.getMultiaddrs().map((m) => m.toString().replace(/\/p2p\/.*$/, '')) });
    const root = await unixfs(a).addBytes(Buffer.alloc(3_500_000, 'bitswap'), { rawLeaves: true });
    const expected: string[] = [];
    for await (const blk of walkDag(root, heliaBlocks(a))) expected.push(blk.cid.toString());

    const blocks = await collect(await client().car('a.onion', root, {}), root);
    expect(blocks[0]!.cid.equals(root)).toBe(true);
    expect(blocks.map((x) => x.cid.toString()).sort()).toEqual([...expected].sort());
    for (const x of blocks) verifyBlock(x.cid, x.bytes);
    expect(httpCalls).toEqual([]);
    expect(b.libp2p.getConnections(a.libp2p.peerId).length).toBeGreaterThan(0);
  });

  it('fetches a block bitswap does not deliver from the gateway instead, and the DAG completes', async () => {
    idBody = JSON.stringify({ id: a.libp2p.peerId.toString(), multiaddrs: a.libp2p.getMultiaddrs().map((m) => m.toString().replace(/\/p2p\/.*$/, '')) });
    const root = await unixfs(a).addBytes(Buffer.alloc(2_500_000, 'lost block'), { rawLeaves: true });
    const leaves: CID[] = [];
    for await (const blk of walkDag(root, heliaBlocks(a))) if (blk.cid.code === 0x55) leaves.push(blk.cid);
    lost.add(leaves[1]!.toString());
    const blocks = await collect(await client().car('a.onion', root, {}), root);
    for (const x of blocks) verifyBlock(x.cid, x.bytes);
    expect(blocks.map((x) => x.cid.toString())).toContain(leaves[1]!.toString());
    expect(rawRequests).toEqual([leaves[1]!.toString()]);
    expect(fallbacks.at(-1)).toMatch(/did not come over bitswap within 300 ms; fetching it from the gateway/);
    lost.clear();
  });

  it('falls back to the HTTP gateway for a peer without libp2p, and says why', async () => {
    idBody = '';
    const root = await unixfs(a).addBytes(Buffer.from('x'));
    await client().car('nolibp2p.onion', root, {});
    expect(httpCalls).toEqual([`nolibp2p.onion ${root}`]);
    expect(fallbacks.at(-1)).toMatch(/^nolibp2p\.onion: it has no \/v1\/ipfs\/id/);
  });

  it('falls back when the advertised address cannot be dialed', async () => {
    // A peer we have no connection to, at an address where nothing listens.
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    idBody = JSON.stringify({ id: stranger.toString(), multiaddrs: ['/ip4/127.0.0.1/tcp/1'] });
    const root = await unixfs(a).addBytes(Buffer.from('y'));
    await client().car('dead.onion', root, { signal: AbortSignal.timeout(10_000) });
    expect(httpCalls.at(-1)).toBe(`dead.onion ${root}`);
    expect(fallbacks.at(-1)).toMatch(/^dead\.onion: dialing \/ip4\/127\.0\.0\.1\/tcp\/1 failed/);
  });
});
