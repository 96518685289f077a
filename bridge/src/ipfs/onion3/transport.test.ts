// Two real libp2p nodes (Noise, yamux, identify, ping) that speak only /onion3, dialing through a
// SOCKS5 stand-in for tor on loopback.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { circuitIdOf } from './connection.js';
import { ONION3_CODE } from './onion3-address.js';
import { FakeTor } from './test-support/fake-tor.js';
import { fakeOnion } from './test-support/fake-onion.js';
import { startDialer, startNode, VIRTUAL_PORT, type TestNode } from './test-support/nodes.js';

const PROTOCOL = '/onion3-test/bulk/1.0.0';

describe('onion3 transport between two libp2p nodes', () => {
  let tor: FakeTor;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    tor = new FakeTor();
    await tor.listen();
    a = await startNode(tor);
    b = await startNode(tor);
  });

  afterAll(async () => {
    await a?.node.stop();
    await b?.node.stop();
    await tor?.close();
  });

  afterEach(async () => {
    await a.node.hangUp(b.node.peerId);
    await b.node.hangUp(a.node.peerId);
  });

  it('dials an onion3 multiaddr without a peer ID: the ID comes from the Noise handshake', async () => {
    const before = tor.connects.length;
    const conn = await a.node.dial(b.addr);
    expect(conn.remotePeer.equals(b.node.peerId)).toBe(true);
    expect(conn.direction).toBe('outbound');
    // tor got the .onion name to resolve itself (SOCKS5 address type 3), not an IP address.
    expect(tor.connects.slice(before)).toEqual([{ atyp: 3, host: `${b.onion}.onion`, port: VIRTUAL_PORT, username: undefined }]);
  });

  it('dials with /p2p/<peer id>, and refuses a peer that is not the one named', async () => {
    const conn = await a.node.dial(b.addr.encapsulate(`/p2p/${b.node.peerId}`));
    expect(conn.remotePeer.equals(b.node.peerId)).toBe(true);
    await a.node.hangUp(b.node.peerId);
    // b's onion with a third peer's ID: the Noise handshake must fail.
    const c = await startDialer(tor);
    try {
      await expect(a.node.dial(b.addr.encapsulate(`/p2p/${c.peerId}`))).rejects.toThrow();
    } finally {
      await c.stop();
    }
  });

  it('pings over the connection', async () => {
    const rtt = await a.node.services.ping.ping(b.addr);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(a.node.getConnections(b.node.peerId)).toHaveLength(1);
  });

  it('exchanges a few MB both ways at once on a protocol stream (backpressure)', async () => {
    const size = 6 * 1024 * 1024;
    const fromA = randomBytes(size);
    const fromB = randomBytes(size);
    const gotAtB = new Promise<Buffer>((resolve, reject) => {
      void b.node.handle(PROTOCOL, async (stream) => {
        try {
          const [received] = await Promise.all([readAll(stream), writeAll(stream, fromB)]);
          resolve(received);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    try {
      const stream = await a.node.dialProtocol(b.addr, PROTOCOL);
      const [gotAtA] = await Promise.all([readAll(stream), writeAll(stream, fromA)]);
      expect(digest(gotAtA)).toBe(digest(fromB));
      expect(digest(await gotAtB)).toBe(digest(fromA));
    } finally {
      await b.node.unhandle(PROTOCOL);
    }
  });

  it('announces only its onion3 address, and identify tells the peer only that', async () => {
    for (const node of [a, b]) {
      const addrs = node.node.getMultiaddrs().map((m) => m.toString());
      expect(addrs).toEqual([`${node.addr.toString()}/p2p/${node.node.peerId}`]);
    }
    const identified = new Promise<string[]>((resolve) => {
      const onIdentify = (evt: CustomEvent<{ peerId: { equals(o: unknown): boolean }; listenAddrs: { toString(): string }[] }>): void => {
        if (!evt.detail.peerId.equals(b.node.peerId)) return;
        a.node.removeEventListener('peer:identify', onIdentify as never);
        resolve(evt.detail.listenAddrs.map((m) => m.toString()));
      };
      a.node.addEventListener('peer:identify', onIdentify as never);
    });
    await a.node.dial(b.addr);
    expect(await identified).toEqual([b.addr.toString()]);
    const stored = await a.node.peerStore.get(b.node.peerId);
    expect(stored.addresses.map((x) => x.multiaddr.getComponents()[0]!.code)).toEqual([ONION3_CODE]);
  });

  it('reports an inbound connection as arriving at its own onion address, never as an IP address', async () => {
    await a.node.dial(b.addr);
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 1);
    const [inbound] = b.node.getConnections(a.node.peerId);
    expect(inbound?.direction).toBe('inbound');
    expect(inbound!.remoteAddr.toString()).toBe(`${b.addr.toString()}/p2p/${a.node.peerId}`);
    expect(circuitIdOf(inbound!)).toBeUndefined();
  });

  it('refuses to dial anything but /onion3: libp2p finds no transport for it', async () => {
    const before = tor.connects.length;
    for (const addr of ['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1', '/dns4/localhost/tcp/1', `/onion3/${b.onion}:4001/ws`]) {
      const err = await a.node.dial(multiaddr(addr)).catch((e: unknown) => e);
      expect([addr, (err as Error).name]).toEqual([addr, 'NoValidAddressesError']);
    }
    expect(tor.connects.length).toBe(before);
    expect(a.node.getConnections()).toHaveLength(0);
  });

  it('fails fast and says why when tor cannot reach the onion', async () => {
    const started = Date.now();
    const err = await a.node.dial(multiaddr(`/onion3/${fakeOnion()}:4001`)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(String(flatten(err))).toMatch(/tor could not connect to [a-z2-7]{56}\.onion:4001 \(SOCKS5 reply: HostUnreachable\)/);
  });

  it('gives up when the abort signal fires, and leaves no socket behind', async () => {
    tor.script = ['hang'];
    const started = Date.now();
    const err = await a.node.dial(b.addr, { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(tor.connects.at(-1)?.host).toBe(`${b.onion}.onion`);
    expect(a.node.getConnections()).toHaveLength(0);
    await waitFor(() => tor.openSockets === 0);
  });

  it('closes both ends when one side hangs up', async () => {
    const conn = await a.node.dial(b.addr);
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 1);
    await conn.close();
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 0);
    await waitFor(() => tor.openSockets === 0);
  });

  it('closes both ends when one side resets the connection', async () => {
    const conn = await a.node.dial(b.addr);
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 1);
    conn.abort(new Error('test reset'));
    expect(conn.status).toBe('aborted');
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 0);
    await waitFor(() => tor.openSockets === 0);
  });
});

describe('onion3 transport with tor\'s PROXY protocol', () => {
  let tor: FakeTor;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    tor = new FakeTor();
    await tor.listen();
    a = await startNode(tor);
    b = await startNode(tor, { proxyProtocol: true, proxyHeaderTimeoutMs: 500 });
  });

  afterAll(async () => {
    await a?.node.stop();
    await b?.node.stop();
    await tor?.close();
  });

  it('strips the PROXY line and exposes the circuit ID of the inbound connection', async () => {
    const outbound = await a.node.dial(b.addr);
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 1);
    const [inbound] = b.node.getConnections(a.node.peerId);
    expect(circuitIdOf(inbound!)).toBe(tor.circuits.at(-1));
    expect(circuitIdOf(outbound)).toBeUndefined();
    expect(await a.node.services.ping.ping(b.addr)).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ['garbage instead of a PROXY line', 'GET / HTTP/1.1\r\n\r\n'],
    ['a PROXY line from something other than tor', 'PROXY TCP4 127.0.0.1 127.0.0.1 1 4001\r\n'],
    ['a PROXY line that never ends', 'PROXY TCP6 ' + 'f'.repeat(200)],
    ['no PROXY line at all (timeout)', ''],
  ])('closes only the stream that sends %s', async (_name, input) => {
    const conn = await a.node.dial(b.addr);
    const started = Date.now();
    const closed = await rawExchange(b.localPort, input);
    expect(closed.received).toBe('');
    expect(Date.now() - started).toBeLessThan(input === '' ? 3_000 : 1_000);
    // The good connection is unaffected.
    expect(conn.status).toBe('open');
    expect(await a.node.services.ping.ping(b.addr)).toBeGreaterThanOrEqual(0);
    expect(b.node.getConnections(a.node.peerId)).toHaveLength(1);
  });

  it('a node without proxyProtocol does not understand a PROXY line: the upgrade fails', async () => {
    const plain = await startNode(tor);
    try {
      tor.addService(plain.onion, VIRTUAL_PORT, plain.localPort, true);
      await expect(a.node.dial(plain.addr, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
      expect(plain.node.getConnections()).toHaveLength(0);
    } finally {
      await plain.node.stop();
    }
  });
});

describe('onion3 transport start and stop', () => {
  it('stops without leaving a listener or socket behind', async () => {
    const tor = new FakeTor();
    await tor.listen();
    const a = await startNode(tor);
    const b = await startNode(tor);
    try {
      await a.node.dial(b.addr);
      await a.node.dialProtocol(b.addr, '/ipfs/ping/1.0.0');
      await waitFor(() => b.node.getConnections().length === 1);
    } finally {
      await a.node.stop();
      await b.node.stop();
    }
    expect(b.node.getMultiaddrs()).toEqual([]);
    await waitFor(() => tor.openSockets === 0);
    await expect(connectRefused(b.localPort)).resolves.toBe(true);
    await tor.close();
  });

  it('restarts on the same onion after a stop', async () => {
    const tor = new FakeTor();
    await tor.listen();
    const a = await startNode(tor);
    const b = await startNode(tor);
    try {
      await b.node.stop();
      await b.node.start();
      expect(b.node.getMultiaddrs().map((m) => m.toString())).toEqual([`${b.addr.toString()}/p2p/${b.node.peerId}`]);
    } finally {
      await a.node.stop();
      await b.node.stop();
      await tor.close();
    }
  });
});

async function readAll(stream: Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk.subarray()));
  return Buffer.concat(chunks);
}

async function writeAll(stream: Stream, data: Buffer): Promise<void> {
  const chunk = 64 * 1024;
  for (let i = 0; i < data.length; i += chunk) {
    if (!stream.send(data.subarray(i, i + chunk))) await stream.onDrain();
  }
  await stream.close();
}

function digest(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The error and its causes/aggregated errors as one string. */
function flatten(err: unknown): string {
  if (err == null) return 'no error';
  const e = err as Error & { errors?: unknown[]; cause?: unknown };
  return [String(e.stack ?? e), ...(e.errors ?? []).map(flatten), ...(e.cause != null ? [flatten(e.cause)] : [])].join('\n');
}

async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${cond.toString()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects to the listener's local port like tor would, sends `input`, and waits for the close. */
function rawExchange(port: number, input: string): Promise<{ received: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (input !== '') s.write(input);
    });
    let received = '';
    s.on('data', (d) => (received += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve({ received }));
    setTimeout(() => {
      s.destroy();
      reject(new Error('the listener kept the stream open'));
    }, 4_000).unref();
  });
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}
