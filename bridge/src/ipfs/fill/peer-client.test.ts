import type { Helia } from '@helia/interface';
import { PeerFault } from './errors.js';
import { addFile, bytesOf, carOf, closedPort, memoryHelia, onion, startPeer, topEntry, type FakePeer, type FakePeerOptions, type TestDag } from './test-support/fixtures.js';
import { httpPeerClient, type PeerClient } from './peer-client.js';

async function fault(p: Promise<unknown>): Promise<PeerFault> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PeerFault);
  return err as PeerFault;
}

describe('httpPeerClient', () => {
  const A = onion('a');
  let helia: Helia;
  let dag: TestDag;
  let car: Uint8Array;
  const servers: FakePeer[] = [];
  beforeAll(async () => {
    helia = await memoryHelia();
    dag = await addFile(helia, bytesOf(3000, 5), 1000);
    car = await carOf([dag.root], dag.blocks);
  });
  afterAll(() => helia.stop());
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function clientFor(top: unknown, cars: FakePeerOptions['cars'] = {}) {
    const peer = await startPeer({ top, cars });
    servers.push(peer);
    const ports: number[] = [];
    const client: PeerClient = httpPeerClient({
      transport: { direct: true },
      urlFor: (_p, port) => {
        ports.push(port);
        return `http://127.0.0.1:${peer.port}`;
      },
      timeoutMs: 2000,
    });
    return { client, peer, ports };
  }

  it('reads a top list from the API port and a CAR from the gateway port', async () => {
    const extra = { cid: dag.root.toString(), count: 1, dagSize: 1, blocks: 1, kind: 'block', future: 'ignored' };
    const { client, peer, ports } = await clientFor(
      { top: [topEntry(dag, 12.5), extra], generatedAt: '2026-11-28T03:00:00.000Z' },
      { [dag.root.toString()]: { car } },
    );
    const top = await client.top(A, 1, {});
    expect(top).toHaveLength(1);
    expect(top[0]!.cid.equals(dag.root)).toBe(true);
    expect(top[0]).toMatchObject({ count: 12.5, dagSize: dag.bytes, blocks: 4, kind: 'root' });
    const chunks: Uint8Array[] = [];
    for await (const c of await client.car(A, dag.root, {})) chunks.push(c);
    expect(Buffer.concat(chunks).equals(Buffer.from(car))).toBe(true);
    expect(ports).toEqual([8000, 80]);
    expect(peer.requests).toEqual(['/v1/ipfs/top?n=1', `/ipfs/${dag.root}?format=car&dag-scope=all`]);
    expect(peer.accepts[1]).toMatch(/^application\/vnd\.ipld\.car/);
  });

  it('says clearly when the top list is not JSON or not a top list', async () => {
    const notJson = await fault((await clientFor('<html>hello</html>')).client.top(A, 5, {}));
    expect(notJson.kind).toBe('bad-response');
    expect(notJson.message).toBe(`${A}'s /v1/ipfs/top answer is not JSON (is 8000 its API port?)`);
    const shape = await fault((await clientFor({ top: [{ ...topEntry(dag, 1), cid: 'nope', count: -1 }] })).client.top(A, 5, {}));
    expect(shape.message).toMatch(/is not a top list: top\.0\.cid: "nope" is not a CID; top\.0\.count: /);
  });

  it('reports HTTP errors and a CAR that is not one', async () => {
    const { client } = await clientFor({ top: [] }, { [dag.root.toString()]: { status: 200, type: 'text/html', body: 'hi' } });
    const type = await fault(client.car(A, dag.root, {}));
    expect(type.message).toBe(`${A} answered text/html instead of a CAR for ${dag.root}`);
    const other = await addFile(helia, bytesOf(10, 6));
    const missing = await fault(client.car(A, other.root, {}));
    expect(missing.kind).toBe('bad-response');
    expect(missing.message).toBe(`${A} answered HTTP 404 to /ipfs/${other.root}: not found`);
  });

  it('reports an unreachable peer', async () => {
    const port = await closedPort();
    const client = httpPeerClient({ transport: { direct: true }, urlFor: () => `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const f = await fault(client.top(A, 5, {}));
    expect(f.kind).toBe('unreachable');
    expect(f.message).toMatch(new RegExp(`^cannot reach ${A}: cannot connect to 127\\.0\\.0\\.1:${port} directly: .*ECONNREFUSED`));
  });

  it('keeps the reason of its own abort', async () => {
    const { client } = await clientFor('stall');
    const ac = new AbortController();
    const reason = new Error('stalled: no progress');
    setTimeout(() => ac.abort(reason), 50);
    await expect(client.top(A, 5, { signal: ac.signal })).rejects.toBe(reason);
  });

  it('only ever dials onion addresses by default', async () => {
    const client = httpPeerClient({ transport: { direct: true } });
    await expect(client.top('example.com', 5, {})).rejects.toThrow('"example.com" is not a v3 onion address (56 base32 characters + .onion); fix PEERS');
  });
});
