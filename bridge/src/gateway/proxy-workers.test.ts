import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { createLogger } from '../log/logger.js';
import { GatewayService } from './gateway-service.js';
import { typeScriptSourceArgs } from './worker-pool.js';
import { ownerOfLocalPort } from './test-support/socket-owner.js';
import { alive, until } from '../../test/support/wait.js';

// PROXY_WORKERS > 1: the gateway forks proxy workers (from the TypeScript source here, see
// worker-pool.ts) that share the plain port and the onion listener's port.

const logLines: string[] = [];
const log = createLogger({
  level: 'debug',
  json: true,
  stream: new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }),
});
const ONION = 'b'.repeat(56) + '.onion';


function get(port: number, path = '/'): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GatewayService with proxy workers', () => {
  let upstream: Server;
  let gw: GatewayService;
  /** Which pid opened the upstream connection of each request: the worker that forwarded it. */
  const servedBy = new Set<number>();

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const pid = ownerOfLocalPort(req.socket.remotePort!, gw.workerPids());
      if (pid) servedBy.add(pid);
      // Slow enough that concurrent requests need several connections.
      setTimeout(() => res.end(`hello ${req.url}`), 20);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/nonexistent',
      listenHost: '127.0.0.1',
      httpPort: 0,
      onionAddress: () => ONION,
      log,
      drainMs: 200,
      workers: 2,
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('forwards on the plain port from more than one worker process', async () => {
    const pids = gw.workerPids();
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(process.pid);
    expect(gw.health()).toMatchObject({ ok: true, workers: 2 });
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => get(gw.httpPort(), `/p${i}`)));
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`hello /p${i}`);
      expect(r.headers['onion-location']).toBe(`http://${ONION}/p${i}`);
    });
    expect([...servedBy].sort()).toEqual([...pids].sort());
  });

  it('shares the onion listener between the workers', async () => {
    const port = Number(gw.onionTarget().split(':')[1]);
    const exchange = (data: string) =>
      new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        let text = '';
        s.on('data', (d) => (text += d));
        s.on('error', () => {});
        s.on('close', () => resolve(text));
        s.write(data);
      });
    const ok = await exchange('PROXY TCP6 fc00:dead:beef:4dad::0:7 ::1 5 80\r\nGET /o HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n');
    expect(ok).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(ok).toContain('hello /o');
    expect(ok.toLowerCase()).not.toContain('onion-location');
    // Connections without a PROXY line are closed, and logged by the worker that had them.
    logLines.length = 0;
    const bad = await Promise.all(Array.from({ length: 8 }, () => exchange('GET / HTTP/1.1\r\n\r\n')));
    expect(bad.every((t) => t === '')).toBe(true);
    await until('the workers\' log lines', () => logLines.filter((l) => l.includes('closed an onion connection')).length >= 8);
    const workers = new Set(logLines.filter((l) => l.includes('closed an onion connection')).map((l) => (JSON.parse(l) as { worker: number }).worker));
    expect(workers.size).toBe(2);
  });

  it('replaces a worker that dies', async () => {
    const [victim, other] = gw.workerPids() as [number, number];
    process.kill(victim, 'SIGKILL');
    const pids = await until('a new worker', () => {
      const p = gw.workerPids();
      return p.length === 2 && !p.includes(victim) && p;
    });
    expect(pids).toContain(other);
    expect(gw.health()).toMatchObject({ workers: 2, workerRestarts: 1 });
    // The plain port still answers, from both workers.
    servedBy.clear();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => get(gw.httpPort(), `/again${i}`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect([...servedBy].sort()).toEqual([...pids].sort());
  });

  it('leaves no worker behind on stop', async () => {
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 100, workers: 3,
    });
    await g.start();
    const pids = g.workerPids();
    expect(pids).toHaveLength(3);
    expect((await get(g.httpPort(), '/x')).status).toBe(200);
    await g.stop();
    expect(pids.filter(alive)).toEqual([]);
    expect(g.workerPids()).toEqual([]);
  });

  it('stays in one process when a per-request hook is set', async () => {
    const seen: string[] = [];
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 100, workers: 2,
      onRequest: (_v, req) => seen.push(req.url ?? ''),
    });
    await g.start();
    try {
      expect(g.workerPids()).toEqual([]);
      expect((await get(g.httpPort(), '/hooked')).body).toBe('hello /hooked');
      expect(seen).toEqual(['/hooked']);
    } finally {
      await g.stop();
    }
  });

  it('fails to start, leaving nothing behind, when the plain port is taken', async () => {
    const g = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: (upstream.address() as AddressInfo).port, onionAddress: () => undefined, log, drainMs: 100, workers: 2,
    });
    await expect(g.start()).rejects.toThrow(/EADDRINUSE/);
    expect(g.workerPids()).toEqual([]);
  });
});

describe('proxy workers without their primary', () => {
  it('exit when the primary process is killed', async () => {
    // A primary of our own, killed with SIGKILL: no chance to stop its workers itself.
    const dir = mkdtempSync(join(tmpdir(), 'torplus-workers-'));
    const pool = fileURLToPath(new URL('./worker-pool.ts', import.meta.url));
    const script = join(dir, 'primary.ts');
    writeFileSync(
      script,
      `import { ProxyWorkerPool } from ${JSON.stringify(pool)};
const noop = () => {};
const log = { log: noop, debug: noop, info: noop, warn: noop, error: noop };
const p = new ProxyWorkerPool({
  workers: 2,
  config: { upstream: 'http://127.0.0.1:9', listenHost: '127.0.0.1', httpPort: ${await freeTcpPort()}, onionPort: ${await freeTcpPort()}, headerTimeoutMs: undefined, drainMs: 100 },
  onionAddress: () => undefined,
  log: log as never,
  onUpstreamError: noop,
});
await p.start();
console.log(JSON.stringify(p.pids()));
setInterval(noop, 1000);
`,
    );
    const child = spawn(process.execPath, [...typeScriptSourceArgs(), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      const pids = await until('the workers\' pids', () => out.includes('\n') && (JSON.parse(out) as number[]), { timeoutMs: 20_000 });
      expect(pids).toHaveLength(2);
      expect(pids.every(alive)).toBe(true);
      child.kill('SIGKILL');
      await until('the workers to exit', () => !pids.some(alive), { timeoutMs: 5_000 });
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
