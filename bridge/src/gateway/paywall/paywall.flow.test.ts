// The pay page on the real parts (local ledger, payments service, meter, gateway): who gets it and who
// never does, a wallet payment of its SEP-7 URI noticed on the account's stream, the credit following the
// session cookie to a new circuit, what the page says about short, late and wrong-memo payments, and the
// form posts' cross-site check.
import { jest } from '@jest/globals';
import { payUri } from '../../devnet/ledger/testing.js';
import { parseSep7Pay } from '../../payments/sep7.js';
import {
  circuitRequest, cookieOf, FREE, IMAGE, NAVIGATE, PAGE, RATE, startPaidGateway, type Got, type PaidGateway,
} from './test-support/paid-gateway.js';

jest.setTimeout(60_000);

/** Uses up a circuit's allowance (GRACE_SECONDS=0: it is throttled as soon as its request exists). */
async function exhaust(g: PaidGateway, circuit: number): Promise<void> {
  await circuitRequest(g.onionPort, circuit, '/big.bin', { maxBytes: FREE + 16 * 1024 });
  // The request is made asynchronously after the allowance runs out: wait until the page shows it.
  for (let i = 0; i < 100; i++) {
    const r = await circuitRequest(g.onionPort, circuit, '/x', { headers: { 'accept-payment': 'stellar' } });
    if (r.status === 402 && JSON.parse(r.body.toString()).id) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no payment request');
}

function linkOf(page: Got): string {
  const m = /id="wallet-link" href="([^"]+)"/.exec(page.body.toString());
  if (!m) throw new Error('no wallet link on the page');
  return m[1]!.replace(/&amp;/g, '&');
}

async function statusOf(g: PaidGateway, circuit: number, page: Got): Promise<{ state: string; lines: string[] }> {
  const url = /data-status="([^"]+)"/.exec(page.body.toString())![1]!;
  const r = await circuitRequest(g.onionPort, circuit, url, { headers: { accept: 'application/json' } });
  return JSON.parse(r.body.toString()) as { state: string; lines: string[] };
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the pay page', () => {
  let g: PaidGateway;
  beforeAll(async () => {
    g = await startPaidGateway();
  });
  afterAll(async () => g?.close());

  it('is what a throttled visitor’s navigation gets, never a sub-resource, a range or a client', async () => {
    const fresh = await circuitRequest(g.onionPort, 1, '/', { headers: NAVIGATE });
    expect(fresh.status).toBe(200);
    expect(fresh.body.toString()).toBe(PAGE);
    await exhaust(g, 1);
    const page = await circuitRequest(g.onionPort, 1, '/article?x=1', { headers: NAVIGATE });
    expect(page.status).toBe(402);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body.length).toBeLessThan(30_000);
    const html = page.body.toString();
    expect(html).toContain('<svg class="qr"');
    expect(html).toContain('Keep reading at full speed');
    expect(html).toContain(g.bridge.address);
    expect(html).toContain('url=/.well-known/torplus/pay/');
    expect(html).toContain('return=%2Farticle%3Fx%3D1');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\/[^"]*"/); // nothing from elsewhere
    const uri = parseSep7Pay(linkOf(page));
    expect(uri.destination).toBe(g.bridge.address);
    expect(uri.memoType).toBe('MEMO_HASH');
    expect(uri.amount).toBe('0.01'); // PAYMENT_MIB 10 at 0.001 XLM
    expect(uri.networkPassphrase).toBe(g.ledger.networkPassphrase);
    expect(uri.msg).toContain('TorPlus');

    const img = await circuitRequest(g.onionPort, 1, '/img.bin', { headers: IMAGE, maxBytes: 16 * 1024 });
    expect(img.status).toBe(200);
    expect(img.headers['content-type']).toBe('image/png');
    const fetchApi = await circuitRequest(g.onionPort, 1, '/', { headers: { accept: '*/*', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' }, maxBytes: 10 });
    expect(fetchApi.status).toBe(200);
    const frame = await circuitRequest(g.onionPort, 1, '/', { headers: { ...NAVIGATE, 'sec-fetch-dest': 'iframe' }, maxBytes: 10 });
    expect(frame.status).toBe(200);
    const range = await circuitRequest(g.onionPort, 1, '/', { headers: { ...NAVIGATE, range: 'bytes=0-9' }, maxBytes: 10 });
    expect(range.status).not.toBe(402);
    const client = await circuitRequest(g.onionPort, 1, '/', { headers: { ...NAVIGATE, 'accept-payment': 'stellar' } });
    expect(client.status).toBe(402);
    expect(client.headers['content-type']).toBe('application/json');
    // A browser without Fetch Metadata: its Accept decides.
    const old = await circuitRequest(g.onionPort, 1, '/', { headers: { accept: 'text/html,*/*;q=0.8' } });
    expect(old.status).toBe(402);
  });

  it('speaks the visitor’s language when it has it', async () => {
    await exhaust(g, 2);
    const de = await circuitRequest(g.onionPort, 2, '/', { headers: { ...NAVIGATE, 'accept-language': 'fr;q=0.9, de-CH, en;q=0.5' } });
    expect(de.body.toString()).toContain('<html lang="de"');
    expect(de.body.toString()).toContain('Mit voller Geschwindigkeit weiterlesen');
    const other = await circuitRequest(g.onionPort, 2, '/', { headers: { ...NAVIGATE, 'accept-language': 'xx' } });
    expect(other.body.toString()).toContain('<html lang="en"');
  });

  it('notices a wallet’s payment of its SEP-7 URI on the ledger, and the credit follows the cookie to a new circuit', async () => {
    await exhaust(g, 3);
    const page = await circuitRequest(g.onionPort, 3, '/big.bin', { headers: NAVIGATE });
    expect(page.status).toBe(402);
    const cookie = cookieOf(page);
    expect(cookie).toMatch(/^torplus_session=[A-Za-z0-9_-]{40,}$/);
    expect(page.headers['set-cookie']![0]).toMatch(/; Path=\/; HttpOnly; SameSite=Lax$/);
    const paidAt = performance.now();
    await payUri(g.ledger, g.visitor.keypair, linkOf(page));
    const st = await waitFor(() => statusOf(g, 3, page), (s) => s.state === 'paid', 10_000);
    expect(st.state).toBe('paid');
    const noticedMs = performance.now() - paidAt;
    expect(noticedMs).toBeLessThan(2000 + 1000); // the 2 s, with room for this poll's 100 ms steps on a busy machine
    // The same navigation now gets the site, at full speed.
    const full = await circuitRequest(g.onionPort, 3, '/big.bin', { headers: NAVIGATE });
    expect(full.status).toBe(200);
    expect(full.body.length).toBe(1024 * 1024);
    expect(full.seconds).toBeLessThan((1024 * 1024) / RATE / 4); // throttled it would take 64 s
    // A new circuit (Tor Browser's "New circuit for this site") with the cookie keeps the credit…
    const other = await circuitRequest(g.onionPort, 33, '/big.bin', { headers: { ...NAVIGATE, cookie: cookie! } });
    expect(other.status).toBe(200);
    expect(other.body.length).toBe(1024 * 1024);
    // …and one without it is a new visitor.
    const stranger = await circuitRequest(g.onionPort, 34, '/', { headers: NAVIGATE });
    expect(stranger.status).toBe(200);
    expect(stranger.headers['torplus-payment-request']).toBeUndefined();
    // The page's own answer for a paid request continues to where the visitor was going.
    const again = await circuitRequest(g.onionPort, 3, /url=([^"]+)"/.exec(page.body.toString())![1]!.replace(/&amp;/g, '&'), { headers: NAVIGATE });
    expect(again.status).toBe(303);
    expect(again.headers.location).toBe('/big.bin');
  });

  it('says what arrived when a payment is short, and credits nothing', async () => {
    await exhaust(g, 4);
    const page = await circuitRequest(g.onionPort, 4, '/', { headers: NAVIGATE });
    await payUri(g.ledger, g.visitor.keypair, linkOf(page), { amount: '0.005' });
    const st = await waitFor(() => statusOf(g, 4, page), (s) => s.lines.length > 1, 10_000);
    expect(st.state).toBe('open');
    expect(st.lines[1]).toBe('Received 0.005 XLM with this memo, but 0.01 XLM is asked. It was not credited: please pay the full amount.');
    const reload = await circuitRequest(g.onionPort, 4, /url=([^"]+)"/.exec(page.body.toString())![1]!.replace(/&amp;/g, '&'), { headers: NAVIGATE });
    expect(reload.status).toBe(402);
    expect(reload.body.toString()).toContain('Received 0.005 XLM with this memo, but 0.01 XLM is asked.');
    expect((await circuitRequest(g.onionPort, 4, '/', { headers: NAVIGATE })).status).toBe(402);
  });

  it('says a transaction with another memo is not this request’s, and credits nothing', async () => {
    await exhaust(g, 5);
    const page = await circuitRequest(g.onionPort, 5, '/', { headers: NAVIGATE });
    const hash = await payUri(g.ledger, g.visitor.keypair, linkOf(page), { memoHex: 'ab'.repeat(32) });
    const submit = /href="([^"]*\/submit[^"]*)"/.exec(page.body.toString())![1]!.replace(/&amp;/g, '&');
    const r = await circuitRequest(g.onionPort, 5, submit, {
      method: 'POST', body: `hash=${hash}`, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://site.onion' },
    });
    expect(r.status).toBe(422);
    expect(r.body.toString()).toContain('is not this request');
    const st = await statusOf(g, 5, page);
    expect(st.state).toBe('open');
    expect(st.lines[1]).toContain(`with the memo ${'ab'.repeat(32)}, which is not this request’s memo`);
  });

  it('checks at once on "I have paid", and refuses that post from another site', async () => {
    await exhaust(g, 6);
    const page = await circuitRequest(g.onionPort, 6, '/', { headers: NAVIGATE });
    const action = /<form method="post" action="([^"]+)"/.exec(page.body.toString())![1]!.replace(/&amp;/g, '&');
    const form = { method: 'POST', body: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    expect((await circuitRequest(g.onionPort, 6, action, form)).status).toBe(403);
    expect((await circuitRequest(g.onionPort, 6, action, { ...form, headers: { ...form.headers, origin: 'http://evil.onion' } })).status).toBe(403);
    expect((await circuitRequest(g.onionPort, 6, action, { ...form, headers: { ...form.headers, 'sec-fetch-site': 'cross-site', origin: 'http://site.onion' } })).status).toBe(403);
    const unpaid = await circuitRequest(g.onionPort, 6, action, { ...form, headers: { ...form.headers, 'sec-fetch-site': 'same-origin' } });
    expect(unpaid.status).toBe(303);
    expect(unpaid.headers.location).toMatch(/checked=1$/);
    const shown = await circuitRequest(g.onionPort, 6, unpaid.headers.location!, { headers: NAVIGATE });
    expect(shown.body.toString()).toContain('No payment with this memo has arrived yet');
    await payUri(g.ledger, g.visitor.keypair, linkOf(page));
    const paid = await waitFor(() => circuitRequest(g.onionPort, 6, action, { ...form, headers: { ...form.headers, origin: 'http://site.onion' } }), (r) => r.headers.location === '/', 10_000);
    expect(paid.status).toBe(303);
    expect(paid.headers.location).toBe('/');
  });

  it('never sends the session token on to the site', async () => {
    const seen: string[] = [];
    // The site's request headers are not observable here; the forwarder's filter is tested with the headers.
    const { filterRawHeaders } = await import('../headers.js');
    seen.push(...filterRawHeaders(['Cookie', 'a=1; torplus_session=SECRET; b=2', 'TorPlus-Session', 'SECRET', 'Accept', '*/*'], 'request'));
    expect(seen.join('\n')).not.toContain('SECRET');
    expect(seen).toEqual(['Cookie', 'a=1; b=2', 'Accept', '*/*']);
  });
});

describe('PAYWALL=throttle', () => {
  let g: PaidGateway;
  beforeAll(async () => {
    g = await startPaidGateway({ paywall: false });
  });
  afterAll(async () => g?.close());

  it('leaves a throttled visitor’s navigations throttled, as before the pay page', async () => {
    await exhaust(g, 7);
    const r = await circuitRequest(g.onionPort, 7, '/', { headers: NAVIGATE });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(PAGE);
    expect(r.headers['torplus-payment-request']).toBe(`http://api.test/v1/payment-requests/${JSON.parse((await circuitRequest(g.onionPort, 7, '/', { headers: { 'accept-payment': 'stellar' } })).body.toString()).id}`);
    expect((await circuitRequest(g.onionPort, 7, '/.well-known/torplus/pay/req_xxxxxxxxxxxx', { headers: NAVIGATE })).status).not.toBe(402);
  });
});

describe('the pay page with proxy workers', () => {
  let g: PaidGateway;
  beforeAll(async () => {
    g = await startPaidGateway({ workers: 2 });
  });
  afterAll(async () => g?.close());

  it('is rendered in the workers from the request the primary sends them, and lifts once paid', async () => {
    await exhaust(g, 8);
    const page = await waitFor(() => circuitRequest(g.onionPort, 8, '/', { headers: NAVIGATE }), (r) => r.status === 402 && r.body.includes('wallet-link'), 10_000);
    expect(page.status).toBe(402);
    expect(cookieOf(page)).toMatch(/^torplus_session=/);
    await payUri(g.ledger, g.visitor.keypair, linkOf(page));
    await waitFor(() => statusOf(g, 8, page), (s) => s.state === 'paid', 10_000);
    const after = await waitFor(() => circuitRequest(g.onionPort, 8, '/', { headers: NAVIGATE }), (r) => r.status === 200, 10_000);
    expect(after.body.toString()).toBe(PAGE);
  });
});
