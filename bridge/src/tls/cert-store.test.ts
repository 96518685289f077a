import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { namesCover } from './cert-info.js';
import { CertStore } from './cert-store.js';
import { makeCert } from './test-support/certs.js';

const DAY = 86_400_000;

async function writePair(dir: string, p: { cert: string; key: string }, mode = 0o600): Promise<void> {
  await writeFile(join(dir, 'privkey.pem'), p.key, { mode });
  await writeFile(join(dir, 'fullchain.pem'), p.cert, { mode });
  await chmod(join(dir, 'privkey.pem'), mode);
  await chmod(join(dir, 'fullchain.pem'), mode);
}

/** Resolves with the next event of `name`, failing the test after `ms`. */
function next<T>(store: CertStore, name: 'loaded' | 'error', ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${name}' event within ${ms} ms`)), ms);
    store.once(name, (v: unknown) => (clearTimeout(t), resolve(v as T)));
  });
}

describe('CertStore', () => {
  let dir: string;
  let a: { cert: string; key: string };
  let b: { cert: string; key: string };
  let stores: CertStore[] = [];
  const make = (o: Partial<ConstructorParameters<typeof CertStore>[0]> = {}): CertStore => {
    const s = new CertStore({ dir, debounceMs: 50, recheckMs: 0, ...o });
    s.on('error', () => {});
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    [a, b] = await Promise.all([makeCert(['torplus.example.test']), makeCert(['*.example.test', 'example.test'])]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'torplus-certstore-'));
  });
  afterEach(async () => {
    for (const s of stores) s.stop();
    stores = [];
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a good pair and reports names, notAfter, days left, coverage and health', async () => {
    await writePair(dir, a);
    const s = make();
    expect(await s.start()).toBe(true);
    const h = s.health();
    expect(h.ok).toBe(true);
    expect(h.names).toEqual(['torplus.example.test']);
    expect(h.daysLeft).toBeGreaterThanOrEqual(29);
    expect(h.daysLeft).toBeLessThanOrEqual(30);
    expect(new Date(h.notAfter!).getTime()).toBeGreaterThan(Date.now() + 29 * DAY);
    expect(s.covers('torplus.example.test')).toBe(true);
    expect(s.covers('TORPLUS.example.test.')).toBe(true);
    expect(s.covers('other.example.test')).toBe(false);
    expect(s.secureContext()).not.toBeNull();
  });

  it('matches wildcards on exactly one label', () => {
    const names = ['*.example.test'];
    expect(namesCover(names, 'torplus.example.test')).toBe(true);
    expect(namesCover(names, 'example.test')).toBe(false);
    expect(namesCover(names, 'a.b.example.test')).toBe(false);
    expect(namesCover(names, 'torplus.example.org')).toBe(false);
  });

  it('refuses a missing pair with a clear error and reports unhealthy', async () => {
    const s = make();
    expect(await s.start()).toBe(false);
    expect(s.health().ok).toBe(false);
    expect(s.health().detail).toMatch(/cannot read the certificate in .*fullchain\.pem and privkey\.pem/);
  });

  it.each([
    ['corrupt PEM', (p: typeof a) => ({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: p.key }), /fullchain\.pem is not a valid certificate chain/],
    ['no PEM at all', (p: typeof a) => ({ cert: 'hello', key: p.key }), /holds no PEM certificate/],
    ['a bad key', (p: typeof a) => ({ cert: p.cert, key: 'garbage' }), /privkey\.pem is not a valid private key/],
    ['a mismatched key', () => ({ cert: b.cert, key: a.key }), /privkey\.pem does not match the certificate/],
  ])('refuses %s and keeps serving the last good pair', async (_what, broken, message) => {
    await writePair(dir, a);
    const s = make();
    await s.start();
    const before = s.secureContext();
    const err = next<Error>(s, 'error');
    await writePair(dir, broken(a));
    expect((await err).message).toMatch(message);
    expect(s.secureContext()).toBe(before);
    expect(s.info()!.names).toEqual(['torplus.example.test']);
    expect(s.health().ok).toBe(false);
    expect(s.health().detail).toMatch(/serving the last good certificate/);
    // and a good pair afterwards is taken again
    const loaded = next(s, 'loaded');
    await writePair(dir, b);
    await loaded;
    expect(s.covers('x.example.test')).toBe(true);
    expect(s.health().ok).toBe(true);
  });

  it('refuses an expired certificate while keeping the last good one', async () => {
    const short = await makeCert(['torplus.example.test'], 1);
    let now = Date.now();
    await writePair(dir, a);
    const s = make({ now: () => now });
    await s.start();
    now += 3 * DAY; // `short` is now expired, `a` (30 days) is not
    const err = next<Error>(s, 'error');
    await writePair(dir, short);
    expect((await err).message).toMatch(/fullchain\.pem expired on .*renew it/);
    expect(s.info()!.notAfter.getTime()).toBeGreaterThan(now);
    expect(s.secureContext()).not.toBeNull();
  });

  it('warns about key files readable by others', async () => {
    await writePair(dir, a, 0o644);
    const s = make();
    const warnings: string[] = [];
    s.on('warning', (w) => warnings.push(w));
    await s.start();
    expect(warnings.some((w) => /privkey\.pem is accessible by group\/others \(mode 644\); run chmod 600/.test(w))).toBe(true);
    warnings.length = 0;
    const loaded = next(s, 'loaded');
    await writePair(dir, b, 0o600);
    await loaded;
    expect(warnings).toEqual([]);
  });

  it('hot-reloads: a new connection gets the new certificate, an open keep-alive connection keeps working', async () => {
    await writePair(dir, a);
    const s = make();
    await s.start();
    const server = https.createServer({ SNICallback: s.sniCallback }, (req, res) => res.end(`hello ${req.url}`));
    server.keepAliveTimeout = 30_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const ca = [a.cert, b.cert];
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    const get = (ag: https.Agent | undefined, path: string): Promise<{ body: string; peer: string; socket: tls.TLSSocket }> =>
      new Promise((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, path, servername: 'torplus.example.test', agent: ag, ca }, (res) => {
          // read the socket now: a keep-alive agent takes it back (res.socket = null) once the body ends
          const socket = res.socket as tls.TLSSocket;
          const peer = socket.getPeerX509Certificate()?.fingerprint256 ?? 'none';
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ body, peer, socket }));
        });
        req.on('error', reject);
      });
    try {
      const first = await get(agent, '/1');
      const { X509Certificate } = await import('node:crypto');
      const fa = new X509Certificate(a.cert).fingerprint256;
      const fb = new X509Certificate(b.cert).fingerprint256;
      expect(first.peer).toBe(fa);

      const loaded = next(s, 'loaded');
      await writePair(dir, b);
      await loaded;

      // the kept-alive connection is reused (same, still open socket: its handshake, and so its
      // certificate, is the old one) and still answers
      const again = await get(agent, '/2');
      expect(again.body).toBe('hello /2');
      expect(again.socket).toBe(first.socket);
      expect(first.socket.destroyed).toBe(false);
      // a new connection sees the new certificate
      const fresh = await get(undefined, '/3');
      expect(fresh.peer).toBe(fb);
    } finally {
      agent.destroy();
      server.closeAllConnections();
      server.close();
    }
  });

  it('picks up changes through the periodic re-check when no watch event comes', async () => {
    await writePair(dir, a);
    const s = make({ recheckMs: 100, debounceMs: 60_000 }); // debounce so long that only the re-check can reload
    await s.start();
    const loaded = next(s, 'loaded');
    await writePair(dir, b);
    await loaded;
    expect(s.covers('x.example.test')).toBe(true);
  });
});
