// The pure pieces: formatting, the chart, the QR code, the cookie.
import { Secret } from '../../../config/secret.js';
import { earningsChart } from './charts.js';
import { esc, formatBytes, formatCount, formatXlm, onionHost } from './format.js';
import { onionQrSvg } from './qr.js';
import { DashboardSession, readCookie } from './session.js';

describe('dashboard rendering helpers', () => {
  it('escapes HTML', () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(esc(undefined)).toBe('');
  });

  it('formats bytes, counts and XLM in human units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(200 * 1024 ** 2)).toBe('200 MiB');
    expect(formatBytes('nope')).toBe('–');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatXlm('12.5')).toBe('12.5');
    expect(formatXlm('<b>')).toBe('–');
    expect(onionHost('ABC.onion')).toBe('abc.onion');
    expect(onionHost('abc')).toBe('abc.onion');
  });

  it('draws the earnings history as a polyline, in time order, scaled into the box', () => {
    const svg = earningsChart([
      { at: '2025-01-03T00:00:00Z', xlm: '10' },
      { at: '2025-01-01T00:00:00Z', xlm: '0' },
      { at: '2025-01-02T00:00:00Z', xlm: '5' },
      { at: 'not a date', xlm: '99' },
    ]);
    const points = /points="([^"]+)"/.exec(svg)![1]!.split(' ').map((p) => p.split(',').map(Number));
    expect(points).toHaveLength(3);
    expect(points.map((p) => p[0]!)).toEqual([...points.map((p) => p[0]!)].sort((a, b) => a - b));
    expect(points[0]![1]).toBeGreaterThan(points[2]![1]!); // 0 XLM lower on screen than 10 XLM
    for (const [x, y] of points) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(600);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(180);
    }
    expect(svg).toContain('max 10 XLM');
  });

  it('shows an empty state instead of an empty chart', () => {
    expect(earningsChart([])).toContain('No earnings yet');
    expect(earningsChart(undefined)).not.toContain('<svg');
    expect(earningsChart([{ at: 'x', xlm: 'y' }])).not.toContain('<svg');
    expect(earningsChart([{ at: '2025-01-01T00:00:00Z', xlm: '1' }])).toContain('<circle');
  });

  it('renders the QR code as an SVG of http://<onion>/', async () => {
    const a = await onionQrSvg('abc');
    const b = await onionQrSvg('abc.onion');
    const c = await onionQrSvg('xyz.onion');
    expect(a).toMatch(/^<svg class="qr"/);
    expect(a).toContain('<path');
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  it('derives the cookie from the token without containing it', () => {
    const s = new DashboardSession(new Secret('token-one'));
    const value = readCookie(s.setCookie(), 'torplus_admin')!;
    expect(value).not.toContain('token-one');
    expect(new DashboardSession(new Secret('token-two')).setCookie()).not.toContain(value);
    expect(s.isToken('token-one')).toBe(true);
    expect(s.isToken('token-on')).toBe(false);
    expect(s.isToken(['token-one'])).toBe(false);
    expect(readCookie('a=1; torplus_admin=v; b=2', 'torplus_admin')).toBe('v');
    expect(readCookie('xtorplus_admin=v', 'torplus_admin')).toBeUndefined();
  });
});

describe('the live events list on a fresh page', () => {
  it('shows the recent events, newest first and escaped, and the empty state without any', async () => {
    const { renderDashboard } = await import('./page.js');
    const { sampleSnapshot } = await import('./testing.js');
    const ctx = { base: '', nonce: 'n' };
    const html = renderDashboard(
      sampleSnapshot({
        recentEvents: [
          { type: 'payment-complete', at: '2026-11-28T05:00:02.000Z', text: '0.1 XLM paid by <script>', data: {} },
          { type: 'payment-requested', at: '2026-11-28T05:00:01.000Z', text: '0.1 XLM requested', data: {} },
        ],
      }),
      undefined,
      ctx,
    );
    const list = /<ul class="plain" id="events">(.*?)<\/ul>/s.exec(html)![1]!;
    expect(list).toContain('<li class="ev ev-complete"><time>05:00:02</time> <span>0.1 XLM paid by &lt;script&gt;</span></li>');
    expect(list.indexOf('ev-complete')).toBeLessThan(list.indexOf('ev-requested'));
    expect(list).not.toContain('No events yet');
    const empty = /<ul class="plain" id="events">(.*?)<\/ul>/s.exec(renderDashboard(sampleSnapshot({ recentEvents: [] }), undefined, ctx))![1]!;
    expect(empty).toContain('No events yet');
  });
});

describe('the bridges behind a master onion', () => {
  it('lists each backend with its state, last heartbeat, visitors and bytes, escaped, and nothing for a bridge on its own', async () => {
    const { renderDashboard } = await import('./page.js');
    const { sampleSnapshot, TEST_ONION } = await import('./testing.js');
    const ctx = { base: '', nonce: 'n' };
    const other = `${'b'.repeat(56)}.onion`;
    const html = renderDashboard(sampleSnapshot({
      instances: {
        master: `${'m'.repeat(56)}.onion`,
        list: [
          { onion: `${TEST_ONION}.onion`, lastBeat: '2026-12-08T00:10:05.000Z', visitors: 3, bytesServed: 2048, live: true, self: true },
          { onion: other, lastBeat: '2026-12-08T00:09:00.000Z', visitors: 0, bytesServed: 0, live: false, self: false },
        ],
      },
    }), undefined, ctx);
    const table = /<table id="instances">(.*?)<\/table>/s.exec(html)![1]!;
    expect(html).toContain(`Bridges behind <code>${'m'.repeat(56)}.onion</code>`);
    expect(table).toContain(`${TEST_ONION}.onion <span class="badge muted">this one</span>`);
    expect(table).toMatch(/badge ok">live<\/span><\/td><td>00:10:05<\/td><td class="n">3<\/td><td class="n">2.00 KiB/);
    expect(table).toMatch(/b{56}\.onion<\/td><td><span class="badge bad">gone/);
    expect(renderDashboard(sampleSnapshot(), undefined, ctx)).not.toContain('id="instances-card"');
  });
});
