// socksGet / socksRequest / waitForOnion against the SOCKS5 stand-in of support/socks-stand-in.ts (no tor involved).
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { socksGet, socksRequest } from '../src/devnet/socks-http.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { freePort, freePorts } from '../src/util/free-port.js';
import { SocksStandIn } from './support/socks-stand-in.js';

describe('socks-http over a SOCKS5 stand-in', () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  let web: http.Server;
  let socks: SocksStandIn;
  let socksPort: number;
  const seen: Array<{ url: string; host: string | undefined; headers: http.IncomingHttpHeaders }> = [];

  beforeAll(async () => {
    web = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', host: req.headers.host, headers: req.headers });
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': big.length });
        res.end(big);
      } else if (req.url === '/missing') {
        res.writeHead(404);
        res.end('nope');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hi ${req.url}`);
      }
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const webPort = (web.address() as AddressInfo).port;
    socks = new SocksStandIn(() => webPort);
    socksPort = await socks.listen();
  });

  afterAll(async () => {
    await socks.close();
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
  });

  beforeEach(() => {
    socks.script = [];
    socks.fallback = 'connect';
  });

  afterEach(() => {
    // Every client greeted in SOCKS5 (version 5).
    expect(socks.errors).toEqual([]);
  });

  test('GET passes the host name unresolved and returns status, headers and body', async () => {
    const onion = `${'a'.repeat(56)}.onion`;
    const r = await socksGet(`http://${onion}/path?q=1`, { socksPort, headers: { 'x-test': 'yes' } });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hi /path?q=1');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.firstByteMs).toBeGreaterThan(0);
    expect(r.totalMs).toBeGreaterThanOrEqual(r.firstByteMs);
    expect(socks.connects.at(-1)).toEqual({ atyp: 3, host: onion, port: 80 });
    const last = seen.at(-1)!;
    expect(last.host).toBe(onion);
    expect(last.headers['x-test']).toBe('yes');
  });

  test('explicit port and a non-200 status', async () => {
    const r = await socksGet('http://example.test:8080/missing', { socksPort });
    expect(r.status).toBe(404);
    expect(r.body.toString()).toBe('nope');
    expect(socks.connects.at(-1)).toEqual({ atyp: 3, host: 'example.test', port: 8080 });
    expect(seen.at(-1)!.host).toBe('example.test:8080');
  });

  test('a SOCKS rejection is an error that says so', async () => {
    socks.script = ['reject'];
    await expect(socksGet('http://x.onion/', { socksPort })).rejects.toThrow(/SOCKS5 handshake.*HostUnreachable/);
  });

  test('a hanging proxy times out within timeoutMs', async () => {
    socks.script = ['hang'];
    const t0 = Date.now();
    await expect(socksGet('http://x.onion/', { socksPort, timeoutMs: 300 })).rejects.toThrow(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  test('an abort signal stops a pending request', async () => {
    socks.script = ['hang'];
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop now')), 100);
    await expect(socksGet('http://x.onion/', { socksPort, signal: ac.signal })).rejects.toThrow(/stop now/);
  });

  test('nothing listening on the SOCKS port', async () => {
    const dead = await freePort();
    await expect(socksGet('http://x.onion/', { socksPort: dead })).rejects.toThrow(/ECONNREFUSED/);
  });

  test('only http: URLs', async () => {
    await expect(socksGet('https://x.onion/', { socksPort })).rejects.toThrow(/only http:/);
  });

  test('socksRequest streams a large body', async () => {
    const { res, firstByteMs, connectMs } = await socksRequest('http://big.onion/big', { socksPort });
    expect(res.statusCode).toBe(200);
    expect(connectMs).toBeLessThanOrEqual(firstByteMs);
    let n = 0;
    for await (const chunk of res) n += (chunk as Buffer).length;
    expect(n).toBe(big.length);
  });

  test('waitForOnion retries until the proxy connects', async () => {
    socks.script = ['reject', 'hang', 'reject'];
    const r = await waitForOnion('http://retry.onion/ok', socksPort, { timeoutMs: 10_000, tryTimeoutMs: 500 });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hi /ok');
    expect(socks.script).toEqual([]);
  });

  test('waitForOnion gives up after timeoutMs with the last error', async () => {
    socks.fallback = 'reject';
    await expect(waitForOnion('http://never.onion/', socksPort, { timeoutMs: 1_500 })).rejects.toThrow(
      /no answer after 1500 ms .*HostUnreachable/,
    );
  });
});

describe('free-port', () => {
  test('freePorts returns distinct bindable ports', async () => {
    const ports = await freePorts(8);
    expect(new Set(ports).size).toBe(8);
    for (const p of ports) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(p, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
