// HTTPS in the gateway: HTTPS_PORT and the onion's port 443 (PROXY line, then TLS), the certificate
// taken from a TlsSource and replaced on reload without dropping a connection already open.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { createLogger } from '../log/logger.js';
import { GatewayService } from './gateway-service.js';
import type { TlsSource } from './tls-source.js';
import type { Visitor } from './visitor.js';

const log = createLogger({ level: 'error' });
const dir = mkdtempSync(join(tmpdir(), 'gw-https-'));

function selfSigned(name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

class TestSource implements TlsSource {
  private readonly fns = new Set<() => void>();
  private ctx: SecureContext | undefined;
  secureContext() {
    return this.ctx;
  }
  onChange(fn: () => void) {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  set(pair: { cert: string; key: string }) {
    this.ctx = createSecureContext(pair);
    for (const f of this.fns) f();
  }
}

function get(port: number, agent: Agent, servername = 'torplus.example.test'): Promise<{ body: string; cn: string; socketId: unknown }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent, servername, rejectUnauthorized: false }, (res) => {
      let body = '';
      const cert = (res.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate();
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ body, cn: String(cert.subject.CN), socketId: res.socket }));
    })
      .on('error', reject)
      .end();
  });
}

describe('GatewayService over HTTPS', () => {
  let upstream: Server;
  let gw: GatewayService;
  const source = new TestSource();
  const visitors: Visitor[] = [];

  beforeAll(async () => {
    upstream = createServer((_req, res) => res.end('hello over tls'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    source.set(selfSigned('torplus.example.test'));
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: dir,
      listenHost: '127.0.0.1',
      httpPort: 0,
      onionAddress: () => undefined,
      log,
      onRequest: (v) => visitors.push(v),
      tls: { source, httpsPort: 0, sslDir: dir },
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('serves HTTPS_PORT with the certificate of the source', async () => {
    const r = await get(gw.httpsPort(), new Agent({ keepAlive: false }));
    expect(r).toMatchObject({ body: 'hello over tls', cn: 'torplus.example.test' });
  });

  it("serves the onion's port 443: the PROXY line first, then TLS, and the visitor is the circuit", async () => {
    const [host, port] = gw.onionTlsTarget()!.split(':');
    const body = await new Promise<string>((resolve, reject) => {
      const raw = netConnect({ host, port: Number(port) }, () => {
        raw.write('PROXY TCP6 fc00:dead:beef:4dad::0:2a ::1 74 443\r\n');
        const t = tlsConnect({ socket: raw, servername: 'x.onion', rejectUnauthorized: false }, () => {
          t.write('GET / HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n\r\n');
        });
        let text = '';
        t.on('data', (d) => (text += d));
        t.on('end', () => resolve(text));
        t.on('error', reject);
      });
    });
    expect(body).toMatch(/^HTTP\/1\.1 200/);
    expect(body).toContain('hello over tls');
    expect(visitors.at(-1)).toEqual({ kind: 'circuit', circuitId: 0x2a });
  });

  it('uses a reloaded certificate for new connections and keeps an open one', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = await get(gw.httpsPort(), agent);
    expect(before.cn).toBe('torplus.example.test');
    source.set(selfSigned('renewed.example.test'));
    // The kept-alive connection still works (and still has the old certificate)…
    const same = await get(gw.httpsPort(), agent);
    expect(same.socketId).toBe(before.socketId);
    expect(same.body).toBe('hello over tls');
    // …and a new one gets the new certificate.
    const fresh = await get(gw.httpsPort(), new Agent({ keepAlive: false }));
    expect(fresh.cn).toBe('renewed.example.test');
    agent.destroy();
  });
});

describe('GatewayService over HTTPS with proxy workers', () => {
  let upstream: Server;
  let gw: GatewayService;
  const ssl = mkdtempSync(join(tmpdir(), 'gw-https-workers-'));

  beforeAll(async () => {
    upstream = createServer((_req, res) => res.end('hello from a worker'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    // Workers read SSL_DIR themselves.
    const pair = selfSigned('torplus.example.test');
    writeFileSync(join(ssl, 'fullchain.pem'), pair.cert, { mode: 0o600 });
    writeFileSync(join(ssl, 'privkey.pem'), pair.key, { mode: 0o600 });
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: dir,
      listenHost: '127.0.0.1',
      httpPort: 0,
      onionAddress: () => undefined,
      log,
      workers: 2,
      tls: { source: new TestSource(), httpsPort: 0, sslDir: ssl },
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('serves HTTPS from the workers with the certificate in SSL_DIR, and picks up a renewed one', async () => {
    expect(gw.workerPids()).toHaveLength(2);
    const r = await get(gw.httpsPort(), new Agent({ keepAlive: false }));
    expect(r).toMatchObject({ body: 'hello from a worker', cn: 'torplus.example.test' });
    const renewed = selfSigned('renewed.example.test');
    writeFileSync(join(ssl, 'privkey.pem'), renewed.key, { mode: 0o600 });
    writeFileSync(join(ssl, 'fullchain.pem'), renewed.cert, { mode: 0o600 });
    const deadline = Date.now() + 10_000;
    // Both workers reload: every new connection, whichever worker takes it, gets the new one.
    while (Date.now() < deadline) {
      const cns = await Promise.all([1, 2, 3, 4].map(() => get(gw.httpsPort(), new Agent({ keepAlive: false })).then((x) => x.cn)));
      if (cns.every((c) => c === 'renewed.example.test')) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const last = await Promise.all([1, 2, 3, 4].map(() => get(gw.httpsPort(), new Agent({ keepAlive: false })).then((x) => x.cn)));
    expect(last).toEqual(['renewed.example.test', 'renewed.example.test', 'renewed.example.test', 'renewed.example.test']);
  });
});

