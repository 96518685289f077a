// The pay page in Debian's headless Chromium, as a visitor sees it: the QR code read back from a
// screenshot, paying its URI from the visitor's key as a phone wallet would, and the page continuing to
// where the visitor was going, with JavaScript on and with it off. Screenshots go to test-artifacts/.
import { jest } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import type { Page } from 'puppeteer-core';
import { launchChromium } from '../../devnet/chromium.js';
import { payUri } from '../../devnet/ledger/testing.js';
import { parseSep7Pay } from '../../payments/sep7.js';
import { decodeQrPng } from './test-support/qr-decode.js';
import { FREE, startPaidGateway, type PaidGateway } from './test-support/paid-gateway.js';

jest.setTimeout(90_000);
const ARTIFACTS = resolve('test-artifacts');
/** Copy buttons a person can see (computed style, not just the hidden attribute). */
const SHOWN_COPY_BUTTONS = `[...document.querySelectorAll('button.copy')].filter((b) => getComputedStyle(b).display !== 'none').length`;

/** Uses up the plain port's visitor (this machine's address) allowance, as the browser's own requests would. */
async function exhaust(port: number): Promise<void> {
  await new Promise<void>((done, fail) => {
    request({ host: '127.0.0.1', port, path: '/big.bin' }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > FREE + 16 * 1024) (res.destroy(), done());
      });
      res.on('end', done);
    }).on('error', fail).end();
  });
}

async function payPage(page: Page, g: PaidGateway, path: string): Promise<string> {
  const port = g.gateway.httpPort();
  for (let i = 0; i < 50; i++) {
    const res = await page.goto(`http://127.0.0.1:${port}${path}`, { waitUntil: 'load' });
    if (res?.status() === 402 && (await page.$('#wallet-link'))) return (await page.$eval('#wallet-link', (a) => a.getAttribute('href')))!;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no pay page');
}

describe('the pay page in headless Chromium', () => {
  it('with JavaScript on: the QR code reads back as the link, and paying it continues to the page', async () => {
    const g = await startPaidGateway();
    const chromium = await launchChromium();
    try {
      const page = await chromium.browser.newPage();
      const problems: string[] = [];
      const foreign: string[] = [];
      // Chromium logs every 4xx as a console error; the page's own 402 is expected.
      page.on('console', (m) => (m.type() === 'error' && !m.text().includes('status of 402') ? problems.push(m.text()) : undefined));
      page.on('pageerror', (err) => problems.push(String(err)));
      page.on('request', (r) => (new URL(r.url()).host !== `127.0.0.1:${g.gateway.httpPort()}` && !r.url().startsWith('data:') ? foreign.push(r.url()) : undefined));
      await exhaust(g.gateway.httpPort());
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.setViewport({ width: 1280, height: 900 });
      const uri = await payPage(page, g, '/index.html?from=test');
      await page.screenshot({ path: join(ARTIFACTS, 'pay-page-1280.png'), fullPage: true });
      await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 2 });
      const shot = await page.screenshot({ path: join(ARTIFACTS, 'pay-page-360.png'), fullPage: true });
      // Nothing wider than the phone's screen.
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
      expect(decodeQrPng(shot)).toBe(uri);
      const p = parseSep7Pay(uri);
      expect(p.destination).toBe(g.bridge.address);
      // Copy buttons appear only with JavaScript.
      expect(await page.evaluate(SHOWN_COPY_BUTTONS)).toBe(3);

      const paid = performance.now();
      const moved = page.waitForFunction('location.pathname === "/index.html" && document.title === "site"', { timeout: 10_000 });
      await payUri(g.ledger, g.visitor.keypair, uri);
      await moved;
      const seconds = (performance.now() - paid) / 1000;
      expect(seconds).toBeLessThan(5);
      expect(page.url()).toMatch(/\/index\.html\?from=test$/);
      expect(problems).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await chromium.close();
      await g.close();
    }
  });

  it('with JavaScript off: the refresh notices the payment and continues to the page', async () => {
    const g = await startPaidGateway();
    const chromium = await launchChromium();
    try {
      const page = await chromium.browser.newPage();
      await page.setJavaScriptEnabled(false);
      await exhaust(g.gateway.httpPort());
      await page.setViewport({ width: 360, height: 740 });
      const uri = await payPage(page, g, '/index.html');
      expect(await page.evaluate(SHOWN_COPY_BUTTONS)).toBe(0);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'pay-page-360-nojs.png'), fullPage: true });
      await payUri(g.ledger, g.visitor.keypair, uri);
      // The <noscript> refresh (every 5 s) loads the request's page, which redirects once it is paid.
      const until = Date.now() + 20_000;
      while (!(page.url().endsWith('/index.html') && (await page.title()) === 'site') && Date.now() < until) {
        await page.waitForNavigation({ timeout: 15_000 }).catch(() => undefined);
      }
      expect(page.url()).toBe(`http://127.0.0.1:${g.gateway.httpPort()}/index.html`);
      expect(await page.title()).toBe('site');
    } finally {
      await chromium.close();
      await g.close();
    }
  });
});
