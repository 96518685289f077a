// The dashboard in a real headless Chromium (puppeteer-core, /usr/bin/chromium) against an express
// app on 127.0.0.1 with a fake source: login, content, a live event without reload, the phone layout.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { TEST_ONION, TEST_TOKEN, startDashboardApp, until, type TestApp } from './testing.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts');

describe('dashboard in headless Chromium', () => {
  let app: TestApp;
  let browser: Browser | undefined;
  let page: Page;
  let profile: string;
  const problems: string[] = [];
  const foreign: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    app = await startDashboardApp();
    profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
    browser = await puppeteer.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
      userDataDir: profile,
    });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(app.base) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const text = async (selector: string) => (await page.$eval(selector, (el) => el.textContent ?? '')).trim();

  it('logs in with ?token= and lands on / without the token', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    const res = await page.goto(`${app.base}/?token=${encodeURIComponent(TEST_TOKEN)}`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(page.url()).toBe(`${app.base}/`);
    const cookies = await browser!.cookies();
    const cookie = cookies.find((c) => c.name === 'torplus_admin');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Strict');
    expect(await page.evaluate('document.cookie')).toBe(''); // HttpOnly: not readable by script
  });

  it('shows the onion, the TXT record, the QR code and the numbers', async () => {
    expect(await text('#onion')).toBe(`${TEST_ONION}.onion`);
    expect(await text('#txt-record')).toBe(`torplus.example.com TXT "torplus=${TEST_ONION}"`);
    expect(await text('#txt-state')).toBe('found');
    expect(await page.$$eval('svg.qr path', (els) => els.length)).toBeGreaterThan(0);
    const qrBox = await (await page.$('svg.qr'))!.boundingBox();
    expect(qrBox!.width).toBeGreaterThan(100);
    expect(await text('[data-f="visitors.now"]')).toBe('7');
    expect(await text('[data-f="visitors.throttled"]')).toBe('3');
    expect(await text('[data-f="visitors.paidBytes"]')).toBe('5.00 GiB');
    expect(await text('[data-f="earnings.totalXlm"]')).toBe('12.5');
    expect(await page.$$eval('#earnings-chart polyline', (els) => els.length)).toBe(1);
    expect(await text('#cert-days')).toBe('61 days left');
    expect(await text('#top-cids tbody')).toContain('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
  });

  it('appends a pushed event without reloading, with the live status connected', async () => {
    await page.waitForFunction("document.getElementById('live').textContent === 'live'", { timeout: 10_000 });
    await page.evaluate('window.__noReload = 42');
    await until(() => app.source.listeners.size === 1);
    app.source.emit({ type: 'payment-requested', at: new Date().toISOString(), text: '0.01 XLM requested for <tab 7>', data: {} });
    app.source.emit({ type: 'payment-complete', at: new Date().toISOString(), text: '0.01 XLM paid by GABC… (tab 7)', data: { stroops: '100000' } });
    await page.waitForFunction("document.querySelectorAll('#events li.ev').length === 2", { timeout: 10_000 });
    const items = await page.$$eval('#events li.ev span', (els) => els.map((e) => e.textContent));
    expect(items).toEqual(['0.01 XLM paid by GABC… (tab 7)', '0.01 XLM requested for <tab 7>']);
    expect(await page.evaluate('window.__noReload')).toBe(42);
  });

  it('refreshes the numbers from /dashboard.json without a reload', async () => {
    app.source.current = { ...app.source.current, visitors: { ...app.source.current.visitors, now: 31 } };
    await page.waitForFunction("document.querySelector('[data-f=\"visitors.now\"]').textContent === '31'", { timeout: 12_000 });
    expect(await page.evaluate('window.__noReload')).toBe(42);
  }, 20_000);

  it('saves a desktop screenshot', async () => {
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it('fits a phone screen (390×844) without horizontal overflow', async () => {
    await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await page.reload({ waitUntil: 'load' });
    expect(await text('#onion')).toBe(`${TEST_ONION}.onion`);
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBe(0);
    const widest = await page.evaluate(
      "Math.max(...Array.from(document.querySelectorAll('main *')).map((e) => e.getBoundingClientRect().right))",
    );
    expect(widest as number).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
  });

  it('shows the login page, without the onion, to a browser without the cookie', async () => {
    const other = await browser!.createBrowserContext();
    try {
      const p = await other.newPage();
      const res = await p.goto(`${app.base}/`);
      expect(res?.status()).toBe(401);
      expect(await p.$('input[name="token"]')).not.toBeNull();
      expect(await p.content()).not.toContain(TEST_ONION);
    } finally {
      await other.close();
    }
  });

  it('ran with no CSP violation, no script error and no request beyond the app', () => {
    expect(problems).toEqual([]);
    expect(foreign).toEqual([]);
  });
});
