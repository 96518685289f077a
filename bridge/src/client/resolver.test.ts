// The client's resolver against a real dnsmasq: resolveOnion (validation, errors, the TTL cache, pins),
// `torplus resolve` (output and exit codes), and `torplus fetch https://<domain>/…` fetching the onion
// through a SOCKS stand-in.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocksStandIn } from '../../test/support/socks-stand-in.js';
import { startDnsmasq, type Dnsmasq } from '../devnet/dnsmasq.js';
import { onion3AddressFromPublicKey } from '../ipfs/onion3/onion3-address.js';
import { freePort } from '../util/free-port.js';
import { main } from './cli.js';
import { OnionChangedError, stateDir } from './onion-pins.js';
import { isResolvableDomain, onionUrl, resolveOnion } from './resolver.js';

const A = onion3AddressFromPublicKey(randomBytes(32));
const B = onion3AddressFromPublicKey(randomBytes(32));
const BAD = `${A.slice(0, 30)}${A[30] === 'a' ? 'b' : 'a'}${A.slice(31)}`;
const NAME = 'torplus.example.test';

let dns: Dnsmasq;
let dead: string;
let dir: string;
let home: string;
let n = 0;

beforeAll(async () => {
  dns = await startDnsmasq({ records: { [NAME]: [`torplus=${A}`] }, domains: ['example.test'], ttl: 300 });
  dead = `127.0.0.1:${await freePort()}`;
  dir = mkdtempSync(join(tmpdir(), 'torplus-resolver-'));
});
afterAll(async () => {
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  home = stateDir({ TORPLUS_HOME: join(dir, `home${n++}`) });
  await dns.setRecords({ [NAME]: [`torplus=${A}`] });
});

const opts = (over: object = {}) => ({ stateDir: home, servers: [dns.server], ...over });

describe('resolveOnion', () => {
  it('finds the onion, pins it, caches it for the TTL (no second query), asks again after', async () => {
    const t0 = new Date('2025-01-01T00:00:00Z');
    const q0 = dns.queries(NAME);
    expect(await resolveOnion('Example.TEST', opts({ now: () => t0 }))).toEqual({ domain: 'example.test', onion: A, cached: false, pin: 'pinned' });
    expect(dns.queries(NAME)).toBe(q0 + 1);
    const within = new Date(t0.getTime() + 299_000);
    expect(await resolveOnion('example.test', opts({ now: () => within }))).toEqual({ domain: 'example.test', onion: A, cached: true, pin: 'same' });
    expect(dns.queries(NAME)).toBe(q0 + 1);
    const cache = JSON.parse(readFileSync(join(home, 'dns-cache.json'), 'utf8'));
    expect(cache['example.test']).toEqual({ onion: A, expires: t0.getTime() + 300_000 });
    const after = new Date(t0.getTime() + 301_000);
    expect((await resolveOnion('example.test', opts({ now: () => after }))).cached).toBe(false);
    expect(dns.queries(NAME)).toBe(q0 + 2);
  });

  it('a cached answer needs no DNS at all (the server stopped)', async () => {
    await resolveOnion('example.test', opts());
    expect((await resolveOnion('example.test', { stateDir: home, servers: [dead], timeoutMs: 200 })).cached).toBe(true);
  });

  it.each([
    ['NXDOMAIN', {}, /^cannot resolve example\.test: torplus\.example\.test does not exist \(NXDOMAIN\)$/],
    ['NODATA', { [NAME]: [] }, /has no TXT record$/],
    ['no torplus= string', { [NAME]: ['v=spf1 -all'] }, /: no torplus= TXT record$/],
    ['a bad checksum', { [NAME]: [`torplus=${BAD}`] }, /wrong checksum/],
    ['malformed', { [NAME]: ['torplus=not-an-onion'] }, /outside base32/],
    ['two onions', { [NAME]: [`torplus=${A}`, `torplus=${B}`] }, /several torplus= TXT records name different onions/],
  ])('refuses %s (exit 1), caches and pins nothing', async (_what, records, message) => {
    await dns.setRecords(records);
    const e = await resolveOnion('example.test', opts()).catch((err: unknown) => err);
    expect((e as Error).message).toMatch(message);
    expect((e as { exitCode: number }).exitCode).toBe(1);
    expect(() => readFileSync(join(home, 'pins.json'))).toThrow();
  });

  it('accepts several strings per record, other records, .onion, case', async () => {
    await dns.setRecords({ [NAME]: ['v=spf1 -all', ['TorPlus = ', `${A.slice(0, 20).toUpperCase()}`, `${A.slice(20)}.onion`]] });
    expect((await resolveOnion('example.test', opts())).onion).toBe(A);
  });

  it('an unreachable DNS server: a clear error after the timeout', async () => {
    await expect(resolveOnion('example.test', { stateDir: home, servers: [dead], timeoutMs: 200 })).rejects.toThrow(
      `cannot resolve example.test: no DNS answer for torplus.example.test TXT (${dead}: timed out after 200 ms)`,
    );
  });

  it('a changed onion is refused, then accepted when told', async () => {
    await resolveOnion('example.test', opts({ maxTtlSeconds: 0 }));
    await dns.setRecords({ [NAME]: [`torplus=${B}`] });
    await expect(resolveOnion('example.test', opts())).rejects.toBeInstanceOf(OnionChangedError);
    expect(await resolveOnion('example.test', opts({ acceptNewOnion: true }))).toMatchObject({ onion: B, pin: 'accepted' });
    expect((await resolveOnion('example.test', opts())).onion).toBe(B);
  });

  it('rewrites domain URLs to the onion, leaves onion URLs alone', async () => {
    expect((await onionUrl('https://example.test/a/b?c=1', opts())).url).toBe(`http://${A}.onion/a/b?c=1`);
    expect((await onionUrl('http://example.test:8080/', opts())).url).toBe(`http://${A}.onion:8080/`);
    expect(await onionUrl(`http://${B}.onion/x`, opts())).toEqual({ url: `http://${B}.onion/x`, resolved: undefined });
    expect(isResolvableDomain('127.0.0.1')).toBe(false);
    expect(isResolvableDomain(`${A}.onion`)).toBe(false);
    expect(isResolvableDomain('localhost')).toBe(false);
    expect(isResolvableDomain('example.com')).toBe(true);
  });
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: { TORPLUS_HOME: home } });
  return { code, out, err };
}

describe('torplus resolve', () => {
  it('prints the onion (exit 0), pins on first use', async () => {
    const r = await run(['resolve', 'example.test', '--dns', dns.server]);
    expect(r).toEqual({ code: 0, out: `${A}.onion\n`, err: `torplus: pinned example.test to ${A}.onion (first use)\n` });
    const again = await run(['resolve', 'example.test', '--dns', dns.server]);
    expect(again).toEqual({ code: 0, out: `${A}.onion\n`, err: '' });
  });

  it('a changed onion: a loud warning, exit 5, nothing on stdout; --accept-new-onion takes it', async () => {
    await run(['resolve', 'example.test', '--dns', dns.server]);
    rmSync(join(home, 'dns-cache.json'));
    await dns.setRecords({ [NAME]: [`torplus=${B}`] });
    const r = await run(['resolve', 'example.test', '--dns', dns.server]);
    expect(r.code).toBe(5);
    expect(r.out).toBe('');
    expect(r.err).toContain('torplus: WARNING: THE ONION OF example.test HAS CHANGED!');
    expect(r.err).toContain(`${A}.onion`);
    expect(r.err).toContain(`the DNS now names:      ${B}.onion`);
    expect(r.err).toMatch(/run again with --accept-new-onion/);
    const ok = await run(['resolve', 'example.test', '--dns', dns.server, '--accept-new-onion']);
    expect(ok).toEqual({ code: 0, out: `${B}.onion\n`, err: `torplus: accepted the new onion of example.test: ${B}.onion (pinned)\n` });
  });

  it('exit 1 with one clear line: missing record, bad checksum, unreachable DNS', async () => {
    await dns.setRecords({});
    expect(await run(['resolve', 'example.test', '--dns', dns.server])).toEqual({
      code: 1, out: '', err: 'torplus: cannot resolve example.test: torplus.example.test does not exist (NXDOMAIN)\n',
    });
    await dns.setRecords({ [NAME]: [`torplus=${BAD}`] });
    const bad = await run(['resolve', 'example.test', '--dns', dns.server]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^torplus: cannot resolve example\.test: torplus\.example\.test: the record names not a Tor v3 onion address: .* wrong checksum/);
    const down = await run(['resolve', 'example.test', '--dns', dead]);
    expect(down.code).toBe(1);
    expect(down.err).toBe(`torplus: cannot resolve example.test: no DNS answer for torplus.example.test TXT (${dead}: timed out after 3000 ms)\n`);
  }, 20_000);

  it.each([
    [['resolve'], /^torplus: resolve takes exactly one domain \(got 0 arguments\)/],
    [['resolve', `${A}.onion`], /^torplus: resolve: expected a domain name/],
    [['resolve', 'example.test', '--dns', 'dns.example'], /^torplus: --dns: expected the DNS server as IP:PORT/],
    [['resolve', 'example.test', '--socks', '9050'], /^torplus: resolve does not take --socks/],
  ])('usage errors: %j → exit 2', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe('torplus fetch https://<domain>/…', () => {
  let site: Server;
  let socks: SocksStandIn;
  let socksPort: number;
  const content = randomBytes(64 * 1024);

  beforeAll(async () => {
    site = createServer((req, res) => {
      if (req.url !== '/file') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': content.length }).end(content);
    });
    const port = await new Promise<number>((resolve) => site.listen(0, '127.0.0.1', () => resolve((site.address() as { port: number }).port)));
    socks = new SocksStandIn(() => port);
    socksPort = await socks.listen();
  });
  afterAll(async () => {
    await socks.close();
    await new Promise((r) => site.close(r));
  });

  it('fetches the onion the domain names, through SOCKS', async () => {
    const out = join(dir, `f${n}.bin`);
    const r = await run(['fetch', 'https://example.test/file', '-o', out, '--socks', `127.0.0.1:${socksPort}`, '--max-spend', '0', '--dns', dns.server, '-q']);
    expect(r.err).toBe(`torplus: example.test is ${A}.onion (pinned, first use)\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(content)).toBe(true);
    expect(socks.connects.at(-1)).toMatchObject({ host: `${A}.onion`, port: 80 });
  });

  it('refuses (exit 5) and connects nowhere when the onion changed', async () => {
    await run(['resolve', 'example.test', '--dns', dns.server]);
    rmSync(join(home, 'dns-cache.json'));
    await dns.setRecords({ [NAME]: [`torplus=${B}`] });
    const before = socks.connects.length;
    const r = await run(['fetch', 'http://example.test/file', '-o', join(dir, 'g.bin'), '--socks', `127.0.0.1:${socksPort}`, '--max-spend', '0', '--dns', dns.server]);
    expect(r.code).toBe(5);
    expect(r.err).toMatch(/THE ONION OF example\.test HAS CHANGED/);
    expect(socks.connects.length).toBe(before);
  });

  it('https:// with an onion stays refused', async () => {
    const r = await run(['fetch', `https://${A}.onion/file`, '-o', join(dir, 'h.bin'), '--socks', '9050', '--max-spend', '0']);
    expect(r.code).toBe(2);
  });
});
