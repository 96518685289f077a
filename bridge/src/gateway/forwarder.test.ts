import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { createForwarder, type ForwarderOptions } from './forwarder.js';
import { createHttpServer } from './listeners.js';

// The forwarder drives llhttp on its own pooled connections (see forwarder.ts); these cases cover the
// HTTP framing that node:http's client used to handle for it. gateway.test.ts covers the rest.

const portOf = (s: Server | TcpServer) => (s.address() as AddressInfo).port;
const listen = async <T extends Server | TcpServer>(s: T): Promise<T> => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return s;
};
const closeServer = (s: Server | TcpServer) =>
  new Promise<void>((r) => {
    (s as Server).closeAllConnections?.();
    s.close(() => r());
  });

interface Got { status: number; headers: IncomingMessage['headers']; body: Buffer }

/** A proxy on an ephemeral port in front of `upstreamPort`. */
async function proxyTo(upstreamPort: number, extra: Partial<ForwarderOptions> = {}) {
  const errors: Error[] = [];
  const fw = createForwarder({ upstream: new URL(`http://127.0.0.1:${upstreamPort}`), onUpstreamError: (e) => errors.push(e), ...extra });
  const server = await listen(createHttpServer(fw.forward));
  return {
    port: portOf(server),
    errors,
    close: async () => {
      fw.close();
      await closeServer(server);
    },
  };
}

function send(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer[]; agent?: false | undefined } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const b of opts.body ?? []) req.write(b);
    req.end();
  });
}

/** A raw TCP "upstream" that answers each request head with `answer(head, socket)`. */
async function rawUpstream(answer: (head: string, socket: Socket) => void): Promise<TcpServer> {
  return listen(
    createTcpServer((socket) => {
      let buf = '';
      socket.on('data', (d) => {
        buf += d.toString('latin1');
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          answer(head, socket);
        }
      });
      socket.on('error', () => {});
    }),
  );
}

describe('createForwarder', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  async function setup(handler: (req: IncomingMessage, res: ServerResponse) => void, extra: Partial<ForwarderOptions> = {}) {
    const up = await listen(createServer(handler));
    const proxy = await proxyTo(portOf(up), extra);
    cleanup.push(() => closeServer(up), proxy.close);
    return { up, proxy };
  }

  it('re-chunks a chunked request body for the upstream', async () => {
    let seen = { te: '', body: '' };
    const { proxy } = await setup((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen = { te: String(req.headers['transfer-encoding']), body };
        res.end('ok');
      });
    });
    const r = await send(proxy.port, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: [Buffer.from('hello '), Buffer.from('chunked '), Buffer.from('world')] });
    expect(r.status).toBe(200);
    expect(seen).toEqual({ te: 'chunked', body: 'hello chunked world' });
  });

  it('answers HEAD without a body and keeps the upstream connection usable', async () => {
    const conns = new Set<unknown>();
    const { proxy } = await setup((req, res) => {
      conns.add(req.socket);
      res.writeHead(200, { 'content-length': '5' });
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const head = await send(proxy.port, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('5');
    expect(head.body.length).toBe(0);
    const get = await send(proxy.port);
    expect(get.body.toString()).toBe('hello');
    expect(conns.size).toBe(1);
  });

  it('skips 1xx informational responses and forwards the final one', async () => {
    const up = await rawUpstream((_head, s) => {
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal');
    });
    const proxy = await proxyTo(portOf(up));
    cleanup.push(() => closeServer(up), proxy.close);
    const r = await send(proxy.port);
    expect(r.status).toBe(200);
    expect(r.headers['x-final']).toBe('yes');
    expect(r.body.toString()).toBe('final');
  });

  it('passes on a body that ends with the connection, and a chunked one', async () => {
    const up = await rawUpstream((head, s) => {
      if (head.startsWith('GET /eof')) s.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
      else s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    });
    const proxy = await proxyTo(portOf(up));
    cleanup.push(() => closeServer(up), proxy.close);
    expect((await send(proxy.port, { path: '/eof' })).body.toString()).toBe('until the end');
    const chunked = await send(proxy.port, { path: '/chunked' });
    expect(chunked.body.toString()).toBe('hello world');
    expect((await send(proxy.port, { path: '/eof' })).body.toString()).toBe('until the end');
  });

  it('forwards many and long response headers', async () => {
    const { proxy } = await setup((_req, res) => {
      for (let i = 0; i < 60; i++) res.setHeader(`x-h${i}`, 'v'.repeat(100) + i);
      res.end('ok');
    });
    const r = await send(proxy.port);
    expect(r.status).toBe(200);
    for (let i = 0; i < 60; i++) expect(r.headers[`x-h${i}`]).toBe('v'.repeat(100) + i);
  });

  it('reuses one upstream connection for sequential requests', async () => {
    const conns = new Set<unknown>();
    const { proxy } = await setup((req, res) => {
      conns.add(req.socket);
      res.end(req.url);
    });
    for (let i = 0; i < 10; i++) expect((await send(proxy.port, { path: `/${i}` })).body.toString()).toBe(`/${i}`);
    expect(conns.size).toBe(1);
  });

  it('retries a safe request once when a pooled connection turns out to be closed', async () => {
    // Answers the first request on each connection; closes the connection on the second, unanswered,
    // as a server whose keep-alive timeout has just passed does.
    const perSocket = new WeakMap<Socket, number>();
    let answered = 0;
    const up = await rawUpstream((_head, s) => {
      const n = (perSocket.get(s) ?? 0) + 1;
      perSocket.set(s, n);
      if (n > 1) return void s.destroy();
      answered++;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
    });
    const proxy = await proxyTo(portOf(up));
    cleanup.push(() => closeServer(up), proxy.close);
    for (let i = 0; i < 4; i++) {
      const r = await send(proxy.port);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('ok');
    }
    expect(answered).toBe(4);
    expect(proxy.errors).toEqual([]);
    // An unsafe request is not retried: the visitor gets the 502.
    const post = await send(proxy.port, { method: 'POST' });
    expect(post.status).toBe(502);
  });

  it('queues requests beyond maxSockets', async () => {
    let open = 0;
    let most = 0;
    const { proxy } = await setup(
      (_req, res) => {
        open++;
        most = Math.max(most, open);
        setTimeout(() => {
          open--;
          res.end('done');
        }, 30);
      },
      { maxSockets: 2 },
    );
    const all = await Promise.all(Array.from({ length: 7 }, () => send(proxy.port)));
    expect(all.every((r) => r.status === 200 && r.body.toString() === 'done')).toBe(true);
    expect(most).toBe(2);
  });

  it('passes on an answer sent before the request body was read', async () => {
    // Like nginx's 413: answered at once, the rest of the body read and dropped (so no reset).
    const { proxy } = await setup((_req, res) => {
      res.writeHead(413, { 'content-length': '8' });
      res.end('too big\n');
    });
    const r = await send(proxy.port, { method: 'POST', headers: { 'content-length': String(2 * 1024 * 1024) }, body: [Buffer.alloc(2 * 1024 * 1024)] });
    expect(r.status).toBe(413);
    expect(r.body.toString()).toBe('too big\n');
    expect(proxy.errors).toEqual([]);
    // The proxy keeps working.
    expect((await send(proxy.port)).status).toBe(413);
  });

  it('holds the upstream back while the visitor does not read (backpressure)', async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const { proxy } = await setup((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    let writtenWhilePaused = 0;
    const received = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, agent: false }, (res) => {
        res.pause();
        setTimeout(() => {
          writtenWhilePaused = written;
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.resume();
        }, 300);
      });
      req.on('error', reject);
      req.end();
    });
    // Socket buffers on the way hold some megabytes at most, never the whole body.
    expect(writtenWhilePaused).toBeLessThan(total / 4);
    expect(received).toBe(total);
  });

  it('answers 502 to a response that is not HTTP', async () => {
    const up = await rawUpstream((_head, s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
    const proxy = await proxyTo(portOf(up));
    cleanup.push(() => closeServer(up), proxy.close);
    const r = await send(proxy.port);
    expect(r.status).toBe(502);
    expect(proxy.errors.length).toBe(1);
  });
});
