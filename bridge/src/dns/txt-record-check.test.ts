// TxtRecordCheck against a real dnsmasq: missing (NXDOMAIN, NODATA, no torplus= string), wrong (another
// onion, a bad checksum, a stale second record), found (plain, multi-string, .onion, case), error (a DNS
// server that does not answer), and the periodic re-check: wrong → found once the record is fixed.
import { randomBytes } from 'node:crypto';
import { startDnsmasq, type Dnsmasq } from '../devnet/dnsmasq.js';
import { onion3AddressFromPublicKey } from '../ipfs/onion3/onion3-address.js';
import { freePort } from '../util/free-port.js';
import { TxtRecordCheck, type TxtCheckHealth } from './txt-record-check.js';

const ONION = onion3AddressFromPublicKey(randomBytes(32));
const OTHER = onion3AddressFromPublicKey(randomBytes(32));
const BAD = `${ONION.slice(0, 20)}${ONION[20] === 'a' ? 'b' : 'a'}${ONION.slice(21)}`;
const RECORD = `torplus.example.test TXT "torplus=${ONION}"`;

let dns: Dnsmasq;
beforeAll(async () => {
  dns = await startDnsmasq({ records: {} , domains: ['example.test'] });
});
afterAll(async () => {
  await dns?.stop();
});

async function checkWith(records: Record<string, (string | string[])[]>): Promise<TxtCheckHealth> {
  await dns.setRecords(records);
  const c = new TxtRecordCheck({ domain: 'Example.test', servers: [dns.server] });
  c.published(`${ONION}.onion`);
  return c.check();
}

it('before the onion is published: pending, ok, no record yet', () => {
  const c = new TxtRecordCheck({ domain: 'example.test', servers: [dns.server] });
  expect(c.health()).toMatchObject({ ok: true, state: 'pending', record: undefined });
});

it.each([
  ['NXDOMAIN', {}, /torplus\.example\.test does not exist \(NXDOMAIN\)/],
  ['NODATA', { 'torplus.example.test': [] }, /has no TXT record/],
  ['no torplus= string', { 'torplus.example.test': ['v=spf1 -all'] }, /has no torplus= TXT record/],
])('missing: %s', async (_what, records, detail) => {
  const h = await checkWith(records);
  expect(h).toMatchObject({ ok: false, state: 'missing', record: RECORD });
  expect(h.detail).toMatch(detail);
  expect(h.detail).toContain(`publish ${RECORD}`);
});

it.each([
  ['another onion', [`torplus=${OTHER}`], /names another onion/],
  ['a bad checksum', [`torplus=${BAD}`], /malformed torplus= record: .*wrong checksum/],
  ['garbage', ['torplus=hello'], /malformed torplus= record/],
  ['ours and a stale one', [`torplus=${ONION}`, `torplus=${OTHER}`], /names another onion/],
])('wrong: %s', async (_what, txt, detail) => {
  const h = await checkWith({ 'torplus.example.test': txt });
  expect(h).toMatchObject({ ok: false, state: 'wrong', record: RECORD });
  expect(h.detail).toMatch(detail);
  expect(h.detail).toContain(`publish ${RECORD}`);
});

it.each([
  ['plain', [`torplus=${ONION}`]],
  ['with .onion, upper case, spaces', [` TORPLUS = ${ONION.toUpperCase()}.onion `]],
  ['split into several strings, among other records', ['v=spf1 -all', ['torplus=', ONION.slice(0, 28), ONION.slice(28)]]],
])('found: %s', async (_what, txt) => {
  const h = await checkWith({ 'torplus.example.test': txt });
  expect(h).toMatchObject({ ok: true, state: 'found', record: RECORD, seen: [ONION] });
  expect(h.detail).toBe('torplus.example.test names this onion');
});

it('error: the DNS server does not answer', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const c = new TxtRecordCheck({ domain: 'example.test', servers: [dead], timeoutMs: 200 });
  c.published(ONION);
  const h = await c.check();
  expect(h).toMatchObject({ ok: false, state: 'error', record: RECORD });
  expect(h.detail).toBe(`cannot check torplus.example.test TXT: no DNS answer for torplus.example.test TXT (${dead}: timed out after 200 ms); publish ${RECORD}`);
});

it('runs by itself after published(): wrong, then found once the record is fixed (fast retries), then slow', async () => {
  await dns.setRecords({ 'torplus.example.test': [`torplus=${OTHER}`] });
  const states: string[] = [];
  const c = new TxtRecordCheck({ domain: 'example.test', servers: [dns.server], retryMs: 100, intervalMs: 60_000, onChange: (h) => states.push(h.state) });
  await c.start();
  try {
    c.published(ONION);
    await waitFor(() => c.health().state === 'wrong');
    const before = dns.queries('torplus.example.test');
    await dns.setRecords({ 'torplus.example.test': [`torplus=${ONION}`] });
    await waitFor(() => c.health().state === 'found');
    expect(states).toEqual(['wrong', 'found']);
    expect(dns.queries('torplus.example.test')).toBeGreaterThan(before);
    // Found: the next check is an interval away, not a retry away.
    const after = dns.queries('torplus.example.test');
    await new Promise((r) => setTimeout(r, 400));
    expect(dns.queries('torplus.example.test')).toBe(after);
  } finally {
    await c.stop();
  }
});

it('stop() ends the checks', async () => {
  await dns.setRecords({});
  const c = new TxtRecordCheck({ domain: 'example.test', servers: [dns.server], retryMs: 50 });
  await c.start();
  c.published(ONION);
  await waitFor(() => c.health().state === 'missing');
  await c.stop();
  const n = dns.queries('torplus.example.test');
  await new Promise((r) => setTimeout(r, 300));
  expect(dns.queries('torplus.example.test')).toBe(n);
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
