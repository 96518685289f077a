import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startPebble, startTestDns, type Pebble, type TestDns } from '../devnet/pebble.js';
import { freePort } from '../util/free-port.js';
import { AcmeService } from './acme-service.js';
import { ariCertId } from './ari.js';
import { splitPemCerts } from './cert-info.js';
import { HttpChallengeStore } from './challenge-store.js';
import { makeCert } from './test-support/certs.js';

const HOST = 'torplus.example.test';
const YEAR = 365 * 86_400_000;

function nextEvent<T>(svc: AcmeService, name: 'issued' | 'error', ms = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${name}' within ${ms} ms; health: ${JSON.stringify(svc.health())}`)), ms);
    svc.once(name, (v: unknown) => (clearTimeout(t), resolve(v as T)));
  });
}

async function tmp(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `torplus-${prefix}-`));
}

/** The chain in `fullchain` verifies up to `rootPem`: each cert signed by the next, the last by the root. */
function verifiesTo(fullchain: string, rootPem: string): boolean {
  const chain = splitPemCerts(fullchain).map((p) => new X509Certificate(p));
  const root = new X509Certificate(rootPem);
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? root;
    if (!chain[i]!.verify(issuer.publicKey)) return false;
  }
  return true;
}

describe('AcmeService against pebble with real HTTP-01 validation', () => {
  let dns: TestDns;
  let pebble: Pebble;
  let challengeServer: http.Server;
  const challenges = new HttpChallengeStore();
  const served: string[] = [];
  let dirs: string[] = [];

  beforeAll(async () => {
    challengeServer = http.createServer((req, res) => {
      served.push(req.url ?? '');
      if (!challenges.handler(req, res)) res.writeHead(404).end();
    });
    challengeServer.listen(0, '127.0.0.1');
    await once(challengeServer, 'listening');
    dns = await startTestDns('example.test');
    pebble = await startPebble({ httpPort: (challengeServer.address() as AddressInfo).port, dnsServer: dns.server });
  });
  afterAll(async () => {
    await pebble?.stop();
    await dns?.stop();
    challengeServer?.close();
  });
  afterEach(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    dirs = [];
  });

  it('issues a certificate that verifies against the pebble root, 0600, and reuses the account key', async () => {
    const [sslDir, dataDir] = [await tmp('ssl'), await tmp('data')];
    dirs.push(sslDir, dataDir);
    const opts = { hostname: HOST, email: 'ops@example.test', sslDir, dataDir, directoryUrl: pebble.directoryUrl, caFile: pebble.caFile, challenges };
    const svc = new AcmeService(opts);
    const issued = nextEvent<{ names: string[] }>(svc, 'issued');
    await svc.checkOnce();
    expect((await issued).names).toEqual([HOST]);

    const fullchain = await readFile(join(sslDir, 'fullchain.pem'), 'utf8');
    const leaf = new X509Certificate(splitPemCerts(fullchain)[0]!);
    expect(leaf.subjectAltName).toBe(`DNS:${HOST}`);
    expect(verifiesTo(fullchain, await pebble.rootCaPem())).toBe(true);
    expect(verifiesTo(fullchain, (await makeCert(['x.test'])).cert)).toBe(false); // the check can fail
    expect(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(join(sslDir, 'privkey.pem'))))).toBe(true);
    expect((await stat(join(sslDir, 'privkey.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(sslDir, 'fullchain.pem'))).mode & 0o777).toBe(0o600);
    const accountPath = join(dataDir, 'acme-account.key');
    expect((await stat(accountPath)).mode & 0o777).toBe(0o600);
    // pebble really fetched the token from our challenge server, and the answer was removed afterwards
    expect(served.some((u) => u.startsWith('/.well-known/acme-challenge/'))).toBe(true);
    expect(challenges.size).toBe(0);
    expect(svc.health()).toMatchObject({ ok: true, names: [HOST], failures: 0 });

    // the ARI certificate ID matches what openssl reads from the certificate
    const leafFile = join(sslDir, 'leaf.pem');
    await writeFile(leafFile, splitPemCerts(fullchain)[0]!);
    const { stdout } = await promisify(execFile)('openssl', ['x509', '-in', leafFile, '-noout', '-serial', '-ext', 'authorityKeyIdentifier']);
    await rm(leafFile);
    const aki = Buffer.from(/([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(stdout.split('\n').slice(1).join('\n'))![1]!.replace(/:/g, ''), 'hex');
    let serialHex = /serial=([0-9A-F]+)/.exec(stdout)![1]!;
    if (serialHex.length % 2) serialHex = `0${serialHex}`;
    let serial = Buffer.from(serialHex, 'hex');
    if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
    expect(ariCertId(fullchain)).toBe(`${aki.toString('base64url')}.${serial.toString('base64url')}`);

    // A second run with the certificate gone: same account key file, a new certificate.
    const keyBefore = await readFile(accountPath, 'utf8');
    await rm(join(sslDir, 'fullchain.pem'));
    const svc2 = new AcmeService(opts);
    await svc2.checkOnce();
    expect(await readFile(accountPath, 'utf8')).toBe(keyBefore);
    const second = new X509Certificate(splitPemCerts(await readFile(join(sslDir, 'fullchain.pem'), 'utf8'))[0]!);
    expect(second.serialNumber).not.toBe(leaf.serialNumber);

    // A third check with a valid certificate in place does nothing until renewal is due.
    const svc3 = new AcmeService(opts);
    let reissued = false;
    svc3.on('issued', () => (reissued = true));
    const renewAt = await svc3.checkOnce();
    expect(reissued).toBe(false);
    const lifetime = new Date(second.validTo).getTime() - new Date(second.validFrom).getTime();
    expect(Math.abs(renewAt - (new Date(second.validFrom).getTime() + (2 / 3) * lifetime))).toBeLessThan(1000);
  }, 60_000);
});

describe('AcmeService renewal and failures', () => {
  let pebble: Pebble;
  let dirs: string[] = [];
  const svcs: AcmeService[] = [];
  beforeAll(async () => {
    pebble = await startPebble({ httpPort: await freePort(), alwaysValid: true }); // validation is not the point here
  });
  afterAll(async () => {
    await pebble?.stop();
  });
  afterEach(async () => {
    await Promise.all(svcs.splice(0).map((s) => s.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    dirs = [];
  });
  const setup = async (): Promise<{ sslDir: string; dataDir: string }> => {
    const [sslDir, dataDir] = [await tmp('ssl'), await tmp('data')];
    dirs.push(sslDir, dataDir);
    return { sslDir, dataDir };
  };

  it('renews once two thirds of the lifetime have passed and swaps the files atomically', async () => {
    const { sslDir, dataDir } = await setup();
    let offset = 0;
    const svc = new AcmeService({
      hostname: HOST, email: 'ops@example.test', sslDir, dataDir, directoryUrl: pebble.directoryUrl, caFile: pebble.caFile,
      now: () => Date.now() + offset, checkIntervalMs: 100, retryBaseMs: 100,
    });
    svcs.push(svc);
    const first = nextEvent<{ notBefore: Date; notAfter: Date; fingerprint256: string }>(svc, 'issued');
    svc.start();
    const a = await first;
    const path = join(sslDir, 'fullchain.pem');
    const oldPem = await readFile(path, 'utf8');
    // not due yet: nothing happens for a few checks
    await new Promise((r) => setTimeout(r, 400));
    expect(await readFile(path, 'utf8')).toBe(oldPem);

    // Readers polling during the swap must always see a complete certificate (old or new).
    let reading = true;
    let reads = 0;
    const torn: string[] = [];
    const reader = (async () => {
      while (reading) {
        const pem = await readFile(path, 'utf8');
        try {
          new X509Certificate(splitPemCerts(pem)[0]!);
        } catch {
          torn.push(pem);
        }
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const second = nextEvent<{ fingerprint256: string }>(svc, 'issued');
    const life = a.notAfter.getTime() - a.notBefore.getTime();
    offset = a.notBefore.getTime() + (2 / 3) * life + 60_000 - Date.now(); // just past 2/3, still before notAfter
    const b = await second;
    reading = false;
    await reader;
    expect(b.fingerprint256).not.toBe(a.fingerprint256);
    expect(reads).toBeGreaterThan(0);
    expect(torn).toEqual([]);
    const leaf = new X509Certificate(splitPemCerts(await readFile(path, 'utf8'))[0]!);
    expect(leaf.fingerprint256).toBe(b.fingerprint256);
    expect((await readdir(sslDir)).sort()).toEqual(['fullchain.pem', 'privkey.pem']); // no temp files left
  }, 60_000);

  it('renews earlier when the directory offers ARI and the suggested window has begun', async () => {
    const { sslDir, dataDir } = await setup();
    const base = { hostname: HOST, email: 'ops@example.test', sslDir, dataDir, caFile: pebble.caFile };
    await new AcmeService({ ...base, directoryUrl: pebble.directoryUrl }).checkOnce();
    const certPem = await readFile(join(sslDir, 'fullchain.pem'), 'utf8');
    // A plain-HTTP wrapper: pebble's directory plus a renewalInfo endpoint that says "renew now".
    const pebbleDir = JSON.parse(await (await import('./https-json.js')).getJson(pebble.directoryUrl, { ca: await readFile(pebble.caFile, 'utf8') }).then((r) => JSON.stringify(r.body))) as Record<string, unknown>;
    const asked: string[] = [];
    const wrapper = http.createServer((req, res) => {
      const port = (wrapper.address() as AddressInfo).port;
      if (req.url === '/dir') return res.end(JSON.stringify({ ...pebbleDir, renewalInfo: `http://127.0.0.1:${port}/ari` }));
      asked.push(req.url ?? '');
      const past = Date.now() - 60_000;
      res.end(JSON.stringify({ suggestedWindow: { start: new Date(past).toISOString(), end: new Date(past + 1000).toISOString() } }));
    });
    wrapper.listen(0, '127.0.0.1');
    await once(wrapper, 'listening');
    try {
      const url = `http://127.0.0.1:${(wrapper.address() as AddressInfo).port}/dir`;
      const svc = new AcmeService({ ...base, directoryUrl: url });
      let issued = false;
      svc.on('issued', () => (issued = true));
      await svc.checkOnce();
      expect(asked).toEqual([`/ari/${ariCertId(certPem)}`]);
      expect(issued).toBe(true);
      expect(await readFile(join(sslDir, 'fullchain.pem'), 'utf8')).not.toBe(certPem);
    } finally {
      wrapper.close();
    }
  }, 60_000);

  it('an unreachable directory gives a clear error, backs off, and leaves the existing certificate alone', async () => {
    const { sslDir, dataDir } = await setup();
    const existing = await makeCert(['old.example.test']); // does not cover HOST, so the service wants a new one
    await writeFile(join(sslDir, 'fullchain.pem'), existing.cert, { mode: 0o600 });
    await writeFile(join(sslDir, 'privkey.pem'), existing.key, { mode: 0o600 });
    const mtime = (await stat(join(sslDir, 'fullchain.pem'))).mtimeMs;
    const dead = `https://127.0.0.1:${await freePort()}/directory`;
    const svc = new AcmeService({ hostname: HOST, email: 'ops@example.test', sslDir, dataDir, directoryUrl: dead, retryBaseMs: 150, retryMaxMs: 10_000 });
    svcs.push(svc);
    const errors: Error[] = [];
    const times: number[] = [];
    svc.on('error', (e) => (errors.push(e), times.push(Date.now())));
    svc.start();
    while (errors.length < 3) await new Promise((r) => setTimeout(r, 20));
    expect(errors[0]!.message).toBe(`ACME directory ${dead} unreachable: connect ECONNREFUSED ${dead.slice(8, dead.indexOf('/', 8))}; check ACME_DIRECTORY and the network`);
    // exponential: the second wait (~300 ms) is longer than the first (~150 ms)
    expect(times[2]! - times[1]!).toBeGreaterThan((times[1]! - times[0]!) * 1.3);
    const h = svc.health();
    expect(h.ok).toBe(false);
    expect(h.failures).toBeGreaterThanOrEqual(3);
    expect(h.detail).toMatch(/unreachable.*check ACME_DIRECTORY/);
    expect(await readFile(join(sslDir, 'fullchain.pem'), 'utf8')).toBe(existing.cert);
    expect(await readFile(join(sslDir, 'privkey.pem'), 'utf8')).toBe(existing.key);
    expect((await stat(join(sslDir, 'fullchain.pem'))).mtimeMs).toBe(mtime);
    expect((await readdir(sslDir)).sort()).toEqual(['fullchain.pem', 'privkey.pem']);
  }, 30_000);
});
