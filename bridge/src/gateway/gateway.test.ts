import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createLogger } from '../log/logger.js';
import { freePort } from '../util/free-port.js';
import { GatewayService } from './gateway-service.js';
import type { Visitor } from './visitor.js';

const log = createLogger({ level: 'error' });
const ONION = 'a'.repeat(56) + '.onion';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function upstreamServer(handler: Handler, port = 0): Promise<Server> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  return s;
}
const portOf = (s: Server) => (s.address() as AddressInfo).port;
const close = (s: Server) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())));

interface Got { status: number; headers: IncomingMessage['headers']; body: Buffer }
function get(port: number, path = '/', headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes to the onion listener and collects everything it answers until it closes. */
function rawExchange(port: number, data: string, waitMs = 1500): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let closed = false;
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    s.write(data);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed });
    }, waitMs);
  });
}

describe('GatewayService', () => {
  let upstream: Server;
  let gw: GatewayService;
  let seenHeaders: IncomingMessage['headers'] = {};
  const visitors: Visitor[] = [];
  let onionPort: number;

  beforeAll(async () => {
    upstream = await upstreamServer((req, res) => {
      seenHeaders = req.headers;
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(8 * 1024 * 1024) });
        const chunk = Buffer.alloc(64 * 1024, 7);
        let left = 128;
        const pump = () => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      if (req.url === '/truncated') {
        res.writeHead(200, { 'content-length': '1000' });
        res.write(Buffer.alloc(500, 1));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/upload') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(String(n)));
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/plain',
        connection: 'keep-alive, x-hop',
        'x-hop': 'should not pass',
        'keep-alive': 'timeout=5',
        'x-kept': 'yes',
      });
      res.end('hello ' + req.url);
    });
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${portOf(upstream)}`),
      wwwDir: '/nonexistent',
      listenHost: '127.0.0.1',
      httpPort: 0,
      onionAddress: () => ONION,
      log,
      drainMs: 200,
      onRequest: (v) => visitors.push(v),
    });
    await gw.start();
    onionPort = Number(gw.onionTarget().split(':')[1]);
  });
  afterAll(async () => {
    await gw.stop();
    await close(upstream);
  });

  it('forwards on the plain port, adds Onion-Location and strips hop-by-hop headers', async () => {
    const r = await get(gw.httpPort(), '/page?q=1');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello /page?q=1');
    expect(r.headers['onion-location']).toBe(`http://${ONION}/page?q=1`);
    expect(r.headers['x-kept']).toBe('yes');
    expect(r.headers['x-hop']).toBeUndefined();
    expect(r.headers['keep-alive']).toBeUndefined();
    expect(visitors.at(-1)).toEqual({ kind: 'direct' });
  });

  it('never forwards headers that identify a visitor', async () => {
    await get(gw.httpPort(), '/', { 'x-forwarded-for': '1.2.3.4', forwarded: 'for=1.2.3.4', 'x-real-ip': '1.2.3.4', 'x-other': 'ok' });
    expect(seenHeaders['x-other']).toBe('ok');
    expect(seenHeaders['x-forwarded-for']).toBeUndefined();
    expect(seenHeaders.forwarded).toBeUndefined();
    expect(seenHeaders['x-real-ip']).toBeUndefined();
  });

  it('gives the onion listener\'s circuit ID to the request, and adds no Onion-Location there', async () => {
    const r = await rawExchange(onionPort, 'PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 5 80\r\nGET /x HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(r.text).toContain('hello /x');
    expect(r.text.toLowerCase()).not.toContain('onion-location');
    expect(visitors.at(-1)).toEqual({ kind: 'circuit', circuitId: 0x10002 });
  });

  it('accepts a PROXY line split across packets', async () => {
    const s = connect({ host: '127.0.0.1', port: onionPort });
    let text = '';
    s.on('data', (d) => (text += d));
    const done = new Promise((r) => s.on('close', r));
    s.write('PROXY TCP6 fc00:de');
    await new Promise((r) => setTimeout(r, 50));
    s.write('ad:beef:4dad::0:9 ::1 5 80\r\nGET /split HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n');
    await done;
    expect(text).toContain('hello /split');
    expect(visitors.at(-1)).toEqual({ kind: 'circuit', circuitId: 9 });
  });

  it.each([
    ['no PROXY line', 'GET / HTTP/1.1\r\nHost: o\r\n\r\n'],
    ['a PROXY line from outside tor', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 80\r\nGET / HTTP/1.1\r\nHost: o\r\n\r\n'],
    ['a PROXY line that never ends', 'PROXY TCP6 ' + 'a'.repeat(200)],
    ['binary garbage', '\x00\x01\x02\x03\r\n'],
  ])('closes a connection with %s, and keeps serving others', async (_name, input) => {
    // A healthy connection is open while the bad one arrives.
    const good = connect({ host: '127.0.0.1', port: onionPort });
    let goodText = '';
    good.on('data', (d) => (goodText += d));
    good.write('PROXY TCP6 fc00:dead:beef:4dad::0:1 ::1 5 80\r\n');
    const bad = await rawExchange(onionPort, input);
    expect(bad.closed).toBe(true);
    expect(bad.text).toBe('');
    const goodDone = new Promise((r) => good.on('close', r));
    good.write('GET /still HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n');
    await goodDone;
    expect(goodText).toContain('hello /still');
  });

  it('closes a connection that sends no PROXY line in time', async () => {
    const quiet = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${portOf(upstream)}`),
      wwwDir: '/nonexistent', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 50,
      headerTimeoutMs: 200,
    });
    await quiet.start();
    try {
      const started = Date.now();
      const r = await rawExchange(Number(quiet.onionTarget().split(':')[1]), '', 3000);
      expect(r.closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await quiet.stop();
    }
  });

  it('streams large bodies both ways', async () => {
    const r = await get(gw.httpPort(), '/big');
    expect(r.body.length).toBe(8 * 1024 * 1024);
    const size = 5 * 1024 * 1024 + 3;
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.httpPort(), path: '/upload', method: 'POST', agent: false }, (res) => {
        let t = '';
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end(Buffer.alloc(size, 3));
    });
    expect(echoed).toBe(String(size));
  });

  it('passes a truncated upstream response on as a cut, not as a complete body', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port: gw.httpPort(), path: '/truncated', agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(`complete ${n}`));
        res.on('aborted', () => resolve(`aborted ${n}`));
        res.on('error', () => resolve(`aborted ${n}`));
      });
      req.on('error', () => resolve('aborted'));
      req.end();
    });
    expect(outcome).toMatch(/^aborted/);
  });

  it('aborts the upstream request when the visitor disconnects', async () => {
    let upstreamClosedEarly!: () => void;
    const closedEarly = new Promise<void>((r) => (upstreamClosedEarly = r));
    const slow = await upstreamServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write('x');
      res.on('close', () => {
        if (!res.writableFinished) upstreamClosedEarly();
      });
    });
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${portOf(slow)}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 50,
    });
    await g.start();
    try {
      const req = request({ host: '127.0.0.1', port: g.httpPort(), agent: false }, (res) => res.once('data', () => req.destroy()));
      req.on('error', () => {});
      req.end();
      await closedEarly; // the test times out if the upstream request is left open
    } finally {
      await g.stop();
      await close(slow);
    }
  });

  it('answers 502 while the upstream is down and recovers by itself', async () => {
    const port = await freePort();
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 50,
    });
    await g.start();
    try {
      const down = await get(g.httpPort());
      expect(down.status).toBe(502);
      expect(g.health().ok).toBe(false);
      const back = await upstreamServer((_q, s) => s.end('back'), port);
      try {
        const up = await get(g.httpPort());
        expect(up.status).toBe(200);
        expect(up.body.toString()).toBe('back');
      } finally {
        await close(back);
      }
      const downAgain = await get(g.httpPort());
      expect(downAgain.status).toBe(502);
    } finally {
      await g.stop();
    }
  });

  it('tunnels Upgrade requests (WebSocket) to the upstream', async () => {
    const ws = await upstreamServer((_q, s) => s.end());
    ws.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d) => socket.write(d));
      socket.on('end', () => socket.destroy());
    });
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${portOf(ws)}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 50,
    });
    await g.start();
    try {
      const text = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: g.httpPort() });
        let t = '';
        s.on('data', (d) => {
          t += d;
          if (t.includes('\r\n\r\n') && !t.includes('ping')) s.write('ping');
          if (t.endsWith('ping')) {
            s.destroy();
            resolve(t);
          }
        });
        s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      });
      expect(text).toMatch(/^HTTP\/1\.1 101/);
      expect(text.endsWith('ping')).toBe(true);
    } finally {
      await g.stop();
      await close(ws);
    }
  });
});
