// The dial side on its own: SOCKS5 through a tor stand-in, with an upgrader that hands back the raw
// connection. Errors must say what happened; aborts and timeouts must not leave sockets behind.
import net, { type AddressInfo } from 'node:net';
import type { DialTransportOptions, MultiaddrConnection } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { NoSocksPortError, OnionUnreachableError, SocksProxyError } from './errors.js';
import { onion3Multiaddr } from './onion3-address.js';
import { FakeTor } from './test-support/fake-tor.js';
import { fakeOnion } from './test-support/fake-onion.js';
import { components, readBytes, StubUpgrader } from './test-support/stub-upgrader.js';
import { Onion3Transport, type Onion3Init } from './transport.js';

describe('onion3 dial', () => {
  let tor: FakeTor;
  let upgrader: StubUpgrader;
  let echo: net.Server;
  let echoSockets: Set<net.Socket>;
  const onion = fakeOnion();
  const target = onion3Multiaddr(onion, 4001);

  beforeAll(async () => {
    tor = new FakeTor();
    await tor.listen();
    echoSockets = new Set();
    echo = net.createServer((s) => {
      echoSockets.add(s);
      s.on('close', () => echoSockets.delete(s));
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    tor.addService(onion, 4001, (echo.address() as AddressInfo).port);
  });

  afterAll(async () => {
    await tor.close();
    for (const s of echoSockets) s.destroy();
    await new Promise((r) => echo.close(r));
  });

  beforeEach(() => {
    upgrader = new StubUpgrader();
    tor.script = [];
  });

  afterEach(async () => {
    await waitFor(() => tor.openSockets === 0);
  });

  const transport = (init: Onion3Init = {}): Onion3Transport =>
    new Onion3Transport(components, { socks: () => ({ host: '127.0.0.1', port: tor.port }), ...init });

  const dial = (t: Onion3Transport, ma: Multiaddr = target, signal = AbortSignal.timeout(5_000)) =>
    t.dial(ma, { upgrader: upgrader.asUpgrader(), signal } as DialTransportOptions) as unknown as Promise<MultiaddrConnection>;

  it('hands tor the .onion name and port, and carries bytes both ways', async () => {
    const conn = await dial(transport());
    expect(tor.connects.at(-1)).toEqual({ atyp: 3, host: `${onion}.onion`, port: 4001, username: undefined });
    expect(conn.remoteAddr.toString()).toBe(target.toString());
    expect(conn.direction).toBe('outbound');
    conn.send(Buffer.from('hello onion'));
    expect((await readBytes(conn, 11)).toString()).toBe('hello onion');
    await conn.close();
    expect(conn.status).toBe('closed');
  });

  it('asks `socks` at every dial, and passes SOCKS credentials (IsolateSOCKSAuth)', async () => {
    const seen: number[] = [];
    const t = new Onion3Transport(components, {
      socks: async () => {
        seen.push(tor.port);
        return { host: '127.0.0.1', port: tor.port, username: 'circuit-a', password: 'x' };
      },
    });
    await (await dial(t)).close();
    await (await dial(t)).close();
    expect(seen).toHaveLength(2);
    expect(tor.connects.at(-1)?.username).toBe('circuit-a');
  });

  it('fails clearly without a SOCKS port, before touching the network', async () => {
    const before = tor.connects.length;
    await expect(dial(new Onion3Transport(components, {}))).rejects.toThrow(NoSocksPortError);
    await expect(dial(transport({ socks: () => undefined }))).rejects.toThrow(/no SOCKS port. Start tor with a SocksPort/);
    expect(tor.connects.length).toBe(before);
  });

  it('says so when nothing listens on the SOCKS port', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await dial(transport({ socks: () => ({ host: '127.0.0.1', port }) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SocksProxyError);
    expect((err as Error).message).toMatch(new RegExp(`cannot reach tor's SOCKS port at 127.0.0.1:${port} \\(.*ECONNREFUSED.*\\): is tor running`));
  });

  it('says so when the SOCKS port is not a SOCKS5 server', async () => {
    const http = net.createServer((s) => {
      s.on('error', () => {});
      s.resume();
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const port = (http.address() as AddressInfo).port;
      const err = await dial(transport({ socks: () => ({ host: '127.0.0.1', port }) })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SocksProxyError);
      expect((err as Error).message).toMatch(/did not answer like a SOCKS5 proxy.*is it tor's SocksPort/);
    } finally {
      await new Promise((r) => http.close(r));
    }
  });

  it('reports an onion tor cannot reach, with the SOCKS5 reply', async () => {
    const err = await dial(transport(), onion3Multiaddr(fakeOnion(), 4001)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnionUnreachableError);
    expect((err as OnionUnreachableError).reply).toBe('HostUnreachable');
    expect((err as Error).message).toMatch(/tor could not connect to [a-z2-7]{56}\.onion:4001 .*offline/);
    // tor's extended error codes (SocksPort ... ExtendedErrors) have no name in `socks`.
    tor.script = [{ reply: 0xf0 }];
    const ext = await dial(transport()).catch((e: unknown) => e);
    expect(ext).toBeInstanceOf(OnionUnreachableError);
    expect((ext as OnionUnreachableError).reply).toBeUndefined();
  });

  it('times out after dialTimeoutMs and closes the socket', async () => {
    tor.script = ['hang'];
    const started = Date.now();
    const err = await dial(transport({ dialTimeoutMs: 200 })).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    expect((err as Error).message).toMatch(/within 200 ms \(dialTimeoutMs\)/);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('honours an abort signal during the SOCKS handshake and closes the socket', async () => {
    tor.script = ['hang'];
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const err = await dial(transport(), target, controller.signal).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('does not connect at all with an aborted signal', async () => {
    const before = tor.connects.length;
    const controller = new AbortController();
    controller.abort();
    await expect(dial(transport(), target, controller.signal)).rejects.toThrow();
    expect(tor.connects.length).toBe(before);
  });

  it('closes the socket when the upgrade fails', async () => {
    upgrader.failWith = new Error('handshake failed');
    await expect(dial(transport())).rejects.toThrow('handshake failed');
    // afterEach checks that the stand-in has no open sockets left.
  });

  it('rejects multiaddrs that are not /onion3 with a clear message', async () => {
    await expect(dial(transport(), multiaddr('/ip4/127.0.0.1/tcp/4001'))).rejects.toThrow(/onion3 cannot dial \/ip4\/127.0.0.1\/tcp\/4001: expected \/onion3/);
  });

  it('applies backpressure: send() reports a full socket, and drain follows once the far end reads', async () => {
    let far!: net.Socket;
    const sink = net.createServer((s) => {
      far = s;
      s.on('error', () => {});
      s.pause(); // reads nothing until told to
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const sinkOnion = fakeOnion();
    tor.addService(sinkOnion, 4001, (sink.address() as AddressInfo).port);
    try {
      const conn = await dial(transport(), onion3Multiaddr(sinkOnion, 4001));
      const chunk = Buffer.alloc(256 * 1024, 7);
      let sent = 0;
      while (conn.send(chunk)) {
        sent += chunk.length;
        // Kernel buffers hold a few MB at most; without backpressure this would never stop.
        if (sent > 256 * 1024 * 1024) throw new Error('send() never reported a full socket');
        await new Promise((r) => setImmediate(r));
      }
      expect(conn.writableNeedsDrain).toBe(true);
      const drained = conn.onDrain({ signal: AbortSignal.timeout(5_000) });
      far.resume();
      await drained;
      expect(conn.writableNeedsDrain).toBe(false);
      conn.abort(new Error('done'));
    } finally {
      far?.destroy();
      await new Promise((r) => sink.close(r));
    }
  });

  it('keeps bytes that arrive in the same packet as the SOCKS reply', async () => {
    // A SOCKS server that answers CONNECT and sends the first stream bytes in one write.
    const eager = net.createServer((s) => {
      s.on('error', () => {});
      let step = 0;
      s.on('data', () => {
        if (step++ === 0) s.write(Buffer.from([5, 0]));
        else s.write(Buffer.concat([Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('early bytes')]));
      });
    });
    await new Promise<void>((r) => eager.listen(0, '127.0.0.1', r));
    try {
      const port = (eager.address() as AddressInfo).port;
      const conn = await dial(transport({ socks: () => ({ host: '127.0.0.1', port }) }));
      expect((await readBytes(conn, 11)).toString()).toBe('early bytes');
      conn.abort(new Error('done'));
    } finally {
      await new Promise((r) => eager.close(r));
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${cond.toString()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
