// The dashboard over HTTP: auth (token, cookie, Bearer), escaping, JSON and the SSE stream.
import { FakeSource, TEST_ONION, TEST_TOKEN, sampleSnapshot, startDashboardApp, until, type TestApp } from './testing.js';

describe('dashboard routes', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startDashboardApp();
  });
  afterAll(async () => {
    await app.close();
  });
  beforeEach(() => {
    app.source.current = sampleSnapshot();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(app.base + path, { headers, redirect: 'manual' });

  async function loginCookie(): Promise<string> {
    const res = await get(`/?token=${encodeURIComponent(TEST_TOKEN)}`);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  }

  it.each([
    ['no token', '/', {}],
    ['a wrong token', '/?token=wrong-token', {}],
    ['a token one character short', `/?token=${TEST_TOKEN.slice(0, -1)}`, {}],
    ['a wrong Bearer', '/', { authorization: 'Bearer nope' }],
    ['a forged cookie', '/', { cookie: 'torplus_admin=forged' }],
    ['the raw token as cookie', '/', { cookie: `torplus_admin=${TEST_TOKEN}` }],
  ])('answers 401 with a login page that reveals nothing for %s', async (_name, path, headers) => {
    const res = await get(path, headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const body = await res.text();
    expect(body).toContain('<form');
    expect(body).toContain('name="token"');
    expect(body).not.toContain(TEST_ONION);
    expect(body).not.toContain('example.com');
    expect(body).not.toMatch(/12\.5|GBRIDGE|bafy/);
  });

  it('logs in with ?token=: HttpOnly SameSite=Strict cookie without the token, 303 to / without the token', async () => {
    const res = await get(`/?token=${encodeURIComponent(TEST_TOKEN)}`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^torplus_admin=[A-Za-z0-9_-]{20,};/);
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Strict/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    expect(cookie).not.toContain(TEST_TOKEN);
  });

  it('shows the dashboard with the session cookie', async () => {
    const res = await get('/', { cookie: `other=1; ${await loginCookie()}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const body = await res.text();
    expect(body).toContain(`${TEST_ONION}.onion`);
    expect(body).toContain(`torplus.example.com TXT &quot;torplus=${TEST_ONION}&quot;`);
    expect(body).toContain('_dnslink.torplus.example.com TXT &quot;dnslink=/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi&quot;');
    expect(body).toMatch(/<svg class="qr"[^>]*viewBox/);
    expect(body).toContain('<polyline class="chart-line"');
    expect(body).toContain('1.50 MiB');
    expect(body).toContain('5.00 GiB');
    expect(body).toContain('61 days left');
    expect(body).not.toContain(TEST_TOKEN);
  });

  it('accepts Authorization: Bearer for the page and the JSON', async () => {
    const page = await get('/', { authorization: `Bearer ${TEST_TOKEN}` });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(TEST_ONION);
    const json = await get('/dashboard.json', { authorization: `Bearer ${TEST_TOKEN}` });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual(sampleSnapshot());
  });

  it('guards /dashboard.json and /events (no token in the query there)', async () => {
    for (const path of ['/dashboard.json', '/events', `/dashboard.json?token=${TEST_TOKEN}`]) {
      const res = await get(path);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain(TEST_ONION);
    }
  });

  it('escapes hostile values from the snapshot', async () => {
    const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&';
    app.source.current = sampleSnapshot({
      domain: `ex.com"><script>alert(3)</script>`,
      txt: { record: evil, state: 'error', detail: evil },
      tor: { bootstrapped: false, progress: 50, detail: evil, restarts: 0, published: false },
      certificate: { names: [evil], notAfter: evil, daysLeft: null, detail: evil },
      ipfs: { root: evil, dnslink: evil, top: [{ cid: evil, count: 1, dagSize: 1 }], peers: [{ [evil]: evil }], lastFill: { x: evil } },
      earnings: { totalXlm: evil, receipts: 0, history: [{ at: '2025-01-01T00:00:00Z', xlm: '1' }, { at: evil, xlm: evil }] },
    });
    const body = await (await get('/', { authorization: `Bearer ${TEST_TOKEN}` })).text();
    expect(body).not.toContain('<script>alert');
    expect(body).not.toContain('<img');
    expect(body).not.toContain('"><script');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;');
    expect(body.match(/<script/g)).toHaveLength(1); // only the page's own script
  });

  it('renders without an onion, IPFS, certificate or history', async () => {
    app.source.current = sampleSnapshot({ onion: undefined, domain: undefined, ipfs: undefined, certificate: undefined, earnings: { totalXlm: '0', receipts: 0, history: [] } });
    const res = await get('/', { authorization: `Bearer ${TEST_TOKEN}` });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).not.toContain('class="qr"');
    expect(body).toContain('id="chart-empty"');
    expect(body).toContain('IPFS is off');
  });

  it('streams events from source.subscribe over SSE, and unsubscribes when the client leaves', async () => {
    const source = app.source as FakeSource;
    const abort = new AbortController();
    const res = await fetch(`${app.base}/events`, { headers: { cookie: await loginCookie() }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(': connected');
    await until(() => source.listeners.size === 1);
    source.emit({ type: 'payment-complete', at: '2025-05-03T10:00:00Z', text: '0.01 XLM paid by GABC… (tab)', data: { stroops: 100000n, line: 'a\nb' } });
    await readUntil('event: payment-complete\ndata: ');
    await readUntil('}\n\n');
    const data = JSON.parse(/event: payment-complete\ndata: (.*)\n\n/.exec(text)![1]!);
    expect(data).toEqual({ type: 'payment-complete', at: '2025-05-03T10:00:00Z', text: '0.01 XLM paid by GABC… (tab)', data: { stroops: '100000', line: 'a\nb' } });
    abort.abort();
    await until(() => source.listeners.size === 0);
  });
});
