// The listen side on its own: what it binds and reports, the PROXY line, and shutdown.
import net from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import { circuitIdOf } from './connection.js';
import { onion3Multiaddr } from './onion3-address.js';
import { fakeOnion } from './test-support/fake-onion.js';
import { components, readBytes, StubUpgrader } from './test-support/stub-upgrader.js';
import { Onion3Transport, type Onion3Init } from './transport.js';
import type { Onion3Listener } from './listener.js';

describe('onion3 listener', () => {
  const onion = fakeOnion();
  const addr = onion3Multiaddr(onion, 4001);
  let upgrader: StubUpgrader;
  const open: Onion3Listener[] = [];

  beforeEach(() => {
    upgrader = new StubUpgrader();
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });

  async function listen(init: Onion3Init): Promise<{ listener: Onion3Listener; port: number; transport: Onion3Transport }> {
    let port = 0;
    const transport = new Onion3Transport(components, {
      ...init,
      listen: { port: 0, ...init.listen, onListening: (info) => (port = info.port) },
    });
    const listener = transport.createListener({ upgrader: upgrader.asUpgrader() }) as Onion3Listener;
    open.push(listener);
    await listener.listen(addr);
    return { listener, port, transport };
  }

  it('reports only the onion address, binds loopback, and tells onListening the local port', async () => {
    let info: { onion: string; host: string; port: number } | undefined;
    const transport = new Onion3Transport(components, {
      listen: { port: 0, onListening: (i) => (info = { ...i, onion: i.onion.toString() }) },
    });
    const listener = transport.createListener({ upgrader: upgrader.asUpgrader() }) as Onion3Listener;
    open.push(listener);
    expect(listener.getAddrs()).toEqual([]);
    const listening = new Promise((r) => listener.addEventListener('listening', r, { once: true }));
    // An upper-case address and a trailing /p2p/ are normalised away.
    await listener.listen(multiaddr(`/onion3/${onion.toUpperCase()}:4001/p2p/12D3KooWGzPFQQd5QhGQUm5Vu1u1nVtVyrjJAW2aG7PtMALeEoPu`));
    await listening;
    expect(listener.getAddrs().map(String)).toEqual([addr.toString()]);
    expect(info).toEqual({ onion: addr.toString(), host: '127.0.0.1', port: expect.any(Number) });
    expect(info!.port).toBeGreaterThan(0);
    expect(listener.localAddress()).toEqual({ host: '127.0.0.1', port: info!.port });
    const closed = new Promise((r) => listener.addEventListener('close', r, { once: true }));
    await listener.close();
    await closed;
    expect(listener.getAddrs()).toEqual([]);
  });

  it('passes the raw stream on without proxyProtocol, a PROXY-looking line included', async () => {
    const { port } = await listen({});
    const s = net.connect(port, '127.0.0.1', () => s.write('PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 4001\r\nrest'));
    const conn = await upgrader.nthInbound(0);
    expect((await readBytes(conn, 52)).toString()).toBe('PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 4001\r\nrest');
    expect(conn.remoteAddr.toString()).toBe(addr.toString());
    expect(circuitIdOf(conn)).toBeUndefined();
    s.destroy();
  });

  it('with proxyProtocol, strips the line, keeps the bytes after it, and records the circuit', async () => {
    const { port } = await listen({ proxyProtocol: true });
    // The line and the first stream bytes in one packet, then more bytes later.
    const s = net.connect(port, '127.0.0.1', () => s.write('PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 2 4001\r\nfirst '));
    const conn = await upgrader.nthInbound(0);
    expect(circuitIdOf(conn)).toBe(0x10002);
    expect(conn.direction).toBe('inbound');
    s.write('second');
    expect((await readBytes(conn, 12)).toString()).toBe('first second');
    // Bytes the other way reach tor's side of the socket.
    const back = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    conn.send(Buffer.from('reply'));
    expect(await back).toBe('reply');
    s.destroy();
  });

  it('with proxyProtocol, a line split over several packets is read whole', async () => {
    const { port } = await listen({ proxyProtocol: true });
    const line = 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 4001\r\nxyz';
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    for (const ch of line) {
      s.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    const conn = await upgrader.nthInbound(0);
    expect(circuitIdOf(conn)).toBe(0x4a);
    expect((await readBytes(conn, 3)).toString()).toBe('xyz');
    s.destroy();
  });

  it('with proxyProtocol, closes a stream that sends a bad line, without an upgrade', async () => {
    const { port } = await listen({ proxyProtocol: true });
    const s = net.connect(port, '127.0.0.1', () => s.write('HELLO\r\n'));
    s.on('error', () => {});
    await new Promise((r) => s.once('close', r));
    expect(upgrader.inbound).toHaveLength(0);
  });

  it('with proxyProtocol, closes a stream that sends nothing after proxyHeaderTimeoutMs', async () => {
    const { port } = await listen({ proxyProtocol: true, proxyHeaderTimeoutMs: 200 });
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('close', r));
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(upgrader.inbound).toHaveLength(0);
  });

  it('closes the connection when the upgrade fails', async () => {
    upgrader.failWith = new Error('denied');
    const { port } = await listen({});
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('close', r));
  });

  it('close() ends open streams, streams still sending their PROXY line, and the port', async () => {
    const { listener, port } = await listen({ proxyProtocol: true });
    const upgraded = net.connect(port, '127.0.0.1', () => upgraded.write('PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 1 4001\r\n'));
    const pending = net.connect(port, '127.0.0.1', () => pending.write('PROXY TCP6 fc00'));
    for (const s of [upgraded, pending]) s.on('error', () => {});
    await upgrader.nthInbound(0);
    const closes = [upgraded, pending].map((s) => new Promise((r) => s.once('close', r)));
    await listener.close();
    await Promise.all(closes);
    await expect(
      new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('connect', reject).on('error', resolve)),
    ).resolves.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses to listen without the `listen` option, naming what is missing', async () => {
    const transport = new Onion3Transport(components, {});
    const listener = transport.createListener({ upgrader: upgrader.asUpgrader() });
    await expect(listener.listen(addr)).rejects.toThrow(/no `listen` option, the local TCP port tor's HiddenServicePort forwards to/);
  });

  it('allows one onion3 listen address per transport', async () => {
    const { transport } = await listen({});
    const second = transport.createListener({ upgrader: upgrader.asUpgrader() });
    await expect(second.listen(onion3Multiaddr(fakeOnion(), 4001))).rejects.toThrow(/one \/onion3 address per transport/);
  });

  it('reports a port already in use', async () => {
    const { port } = await listen({});
    const transport = new Onion3Transport(components, { listen: { port } });
    const listener = transport.createListener({ upgrader: upgrader.asUpgrader() });
    await expect(listener.listen(addr)).rejects.toThrow(new RegExp(`cannot bind 127.0.0.1:${port}.*EADDRINUSE`));
    // A failed listen leaves the transport free to try again.
    const again = new Onion3Transport(components, { listen: { port: 0 } }).createListener({ upgrader: upgrader.asUpgrader() });
    open.push(again as Onion3Listener);
    await again.listen(addr);
  });

  it('does not stay bound when onListening throws', async () => {
    let port = 0;
    const transport = new Onion3Transport(components, {
      listen: {
        port: 0,
        onListening: (info) => {
          port = info.port;
          throw new Error('cannot configure tor');
        },
      },
    });
    const listener = transport.createListener({ upgrader: upgrader.asUpgrader() });
    await expect(listener.listen(addr)).rejects.toThrow('cannot configure tor');
    expect(listener.getAddrs()).toEqual([]);
    await expect(
      new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('connect', reject).on('error', resolve)),
    ).resolves.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects bad options up front', () => {
    expect(() => new Onion3Transport(components, { listen: { port: 70000 } })).toThrow(/listen.port/);
    expect(() => new Onion3Transport(components, { dialTimeoutMs: -1 })).toThrow(/dialTimeoutMs/);
  });
});
