// queryTxt against a real dnsmasq on a high port: records with their TTL, multi-string records, NXDOMAIN,
// NODATA, a server that does not answer (timeout, then the next server), and the server list parsing.
import { startDnsmasq, type Dnsmasq } from '../devnet/dnsmasq.js';
import { freePort } from '../util/free-port.js';
import { DnsQueryError, parseDnsServer, queryTxt } from './txt-query.js';

let dns: Dnsmasq;
let dead: string;

beforeAll(async () => {
  dns = await startDnsmasq({
    records: { 'torplus.example.test': [['torplus=', 'abc'], 'v=spf1 -all'], 'bare.example.test': [], 'odd.example.test': [['a"b\\c', 'd,e']] },
    ttl: 77,
  });
  dead = `127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await dns?.stop();
});

it('returns every TXT record, its strings apart, and the TTL', async () => {
  const a = await queryTxt('torplus.example.test', { servers: [dns.server] });
  expect(a.kind).toBe('records');
  if (a.kind !== 'records') return;
  expect(a.ttl).toBe(77);
  expect(a.records).toHaveLength(2);
  expect(a.records).toEqual(expect.arrayContaining([['torplus=', 'abc'], ['v=spf1 -all']]));
  expect(await queryTxt('ODD.example.test', { servers: [dns.server] })).toEqual({ kind: 'records', records: [['a"b\\c', 'd,e']], ttl: 77 });
});

it('NXDOMAIN and NODATA', async () => {
  expect(await queryTxt('nothing.example.test', { servers: [dns.server] })).toEqual({ kind: 'nxdomain' });
  expect(await queryTxt('bare.example.test', { servers: [dns.server] })).toEqual({ kind: 'nodata' });
});

it('a server that does not answer: a timeout, with the server named; the next server is tried', async () => {
  const started = Date.now();
  const e = await queryTxt('torplus.example.test', { servers: [dead], timeoutMs: 300 }).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(DnsQueryError);
  expect((e as Error).message).toBe(`no DNS answer for torplus.example.test TXT (${dead}: timed out after 300 ms)`);
  expect(Date.now() - started).toBeLessThan(2000);
  const a = await queryTxt('torplus.example.test', { servers: [dead, dns.server], timeoutMs: 300 });
  expect(a.kind).toBe('records');
});

it('REFUSED (a name outside the served domains) is an error', async () => {
  await expect(queryTxt('example.org', { servers: [dns.server] })).rejects.toThrow(/answered REFUSED/);
});

it('an abort signal stops the wait', async () => {
  const ac = new AbortController();
  const p = queryTxt('torplus.example.test', { servers: [dead], timeoutMs: 10_000, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('cancelled')), 50);
  await expect(p).rejects.toThrow('cancelled');
});

it('parses server addresses', () => {
  expect(parseDnsServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
  expect(parseDnsServer('10.0.0.1')).toEqual({ host: '10.0.0.1', port: 53 });
  expect(parseDnsServer('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
  expect(parseDnsServer('::1')).toEqual({ host: '::1', port: 53 });
  expect(() => parseDnsServer('dns.example:53')).toThrow(/not a DNS server address/);
  expect(() => parseDnsServer('127.0.0.1:0')).toThrow(/not a DNS server address/);
});
