// Issue 12 as it is checked: a visitor in a browser (Debian's headless Chromium, through a tor of its own
// on the private network, which resolves the .onion) pays with a wallet, with no TorPlus client. Past the
// allowance a navigation gets the pay page while an image keeps loading throttled; the QR code read from
// a screenshot is the page's SEP-7 link; paying it from the visitor's key on the ledger makes the open page
// continue by itself; the credit survives new circuits; with JavaScript off the refresh does the same.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'puppeteer-core';
import { startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { launchChromium } from '../src/devnet/chromium.js';
import { startClientTor, type ClientTor } from '../src/devnet/client-tor.js';
import { startLedger, type LedgerHandle } from '../src/devnet/ledger/ledger.js';
import { fundedAccount, payUri, type Funded } from '../src/devnet/ledger/testing.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { decodeQrPng } from '../src/gateway/paywall/test-support/qr-decode.js';
import { parseSep7Pay } from '../src/payments/sep7.js';
import { PNG } from 'pngjs';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';

jest.setTimeout(240_000);

const ARTIFACTS = resolve('test-artifacts');
const FREE = 256 * 1024;
const RATE = 32 * 1024;
/** A real image (noise, so it does not compress): Chromium stops fetching a body it cannot decode. */
function noisePng(side: number): Buffer {
  const png = new PNG({ width: side, height: side });
  png.data.set(randomBytes(png.data.length));
  return PNG.sync.write(png);
}
const IMAGE = noisePng(300);
const IMG = IMAGE.length;
const BIG = 2 * 1024 * 1024;

describe('a Tor Browser visitor pays with a wallet', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-paywall-e2e-'));
  const www = join(dir, 'www');
  let ledger: LedgerHandle;
  let visitor: Funded;
  let bridge: BridgeProcess;
  let tor: ClientTor;
  let onion: string;
  let api: number;

  beforeAll(async () => {
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'index.html'), '<!doctype html><title>home</title><h1>home</h1><img id="pic" src="/img.png" width="10" height="10">');
    writeFileSync(join(www, 'article.html'), '<!doctype html><title>article</title><h1>the article</h1>');
    writeFileSync(join(www, 'img.png'), IMAGE);
    writeFileSync(join(www, 'big.bin'), randomBytes(BIG));
    ledger = await startLedger({ port: 0 });
    const publisher = await fundedAccount(ledger);
    visitor = await fundedAccount(ledger);
    const [http, apiPort] = await freePorts(2);
    api = apiPort!;
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: www, TOR_DIR: join(dir, 'tor'), DATA_DIR: join(dir, 'data'), TOR_EXTRA_CONFIG: net.joinConfigFile,
        LISTEN_HOST: '127.0.0.1', HTTP_PORT: String(http), API_PORT: String(api), IPFS_ENABLED: 'false',
        seed: publisher.keypair.secret(), PP_ENV: 'local', HORIZON_URL: ledger.url,
        FREE_BYTES: String(FREE), THROTTLE_BYTES_PER_SEC: String(RATE), GRACE_SECONDS: '0', PRICE_PER_MIB: '0.01', PAYMENT_MIB: '10',
        ADMIN_TOKEN: 'e2e-admin-token-0123456789',
      },
    });
    [onion, tor] = await Promise.all([bridge.published(90_000), startClientTor(net.joinConfig)]);
    await waitForOnion(`http://${onion}/`, tor.socksPort, { timeoutMs: 90_000 });
  });

  afterAll(async () => {
    await bridge?.stop(5000);
    await tor?.stop();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Navigates until the pay page is there (the request is made a moment after the allowance runs out). */
  async function payPage(page: Page, path: string): Promise<string> {
    for (let i = 0; i < 30; i++) {
      const res = await page.goto(`http://${onion}${path}`, { waitUntil: 'load', timeout: 60_000 });
      if (process.env.DEBUG_E2E) console.log(res?.status(), (await page.content()).slice(0, 300));
      if (res?.status() === 402 && (await page.$('#wallet-link'))) return (await page.$eval('#wallet-link', (a) => a.getAttribute('href')))!;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error('no pay page');
  }

  it('shows the pay page, the image keeps loading, the QR code pays, the page continues, and new circuits keep the credit', async () => {
    const chromium = await launchChromium({ args: [`--proxy-server=socks5://127.0.0.1:${tor.socksPort}`] });
    try {
      const page = await chromium.browser.newPage();
      page.setDefaultTimeout(60_000);
      // The home page is free; its image crosses the allowance and goes on loading, throttled, as an image.
      const image = page.waitForResponse((r) => r.url().endsWith('/img.png'), { timeout: 60_000 });
      const home = await page.goto(`http://${onion}/`, { waitUntil: 'load', timeout: 90_000 });
      expect(home?.status()).toBe(200);
      const img = await image;
      expect(img.status()).toBe(200);
      expect(img.headers()['content-type']).toBe('image/png');
      // The browser's own account of the image: all of it arrived, the part past the allowance throttled.
      const timing = (await page.evaluate(`(() => { const e = performance.getEntriesByType('resource').find((x) => x.name.endsWith('/img.png')); return e && [e.encodedBodySize, e.responseEnd - e.responseStart]; })()`)) as [number, number];
      expect(timing[0]).toBe(IMG);
      expect(timing[1] / 1000).toBeGreaterThan((IMG - FREE) / RATE / 3);

      const uri = await payPage(page, '/article.html');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.setViewport({ width: 1280, height: 900 });
      await page.screenshot({ path: join(ARTIFACTS, 'pay-page-e2e-1280.png'), fullPage: true });
      await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 2 });
      const shot = await page.screenshot({ path: join(ARTIFACTS, 'pay-page-e2e-360.png'), fullPage: true });
      expect(decodeQrPng(shot)).toBe(uri);
      const sep7 = parseSep7Pay(uri);
      expect(sep7.memoType).toBe('MEMO_HASH');
      expect(sep7.amount).toBe('0.1');
      expect(sep7.msg).toContain(onion);

      const paidAt = performance.now();
      const continued = page.waitForFunction('location.pathname === "/article.html" && document.title === "article"', { timeout: 30_000 });
      await payUri(ledger, visitor.keypair, uri);
      await continued;
      expect((performance.now() - paidAt) / 1000).toBeLessThan(5);

      const fast = async () => (await page.evaluate(`(async () => { const t = performance.now(); const b = await (await fetch('/big.bin', { cache: 'no-store' })).arrayBuffer(); return [b.byteLength, (performance.now() - t) / 1000]; })()`)) as [number, number];
      const [bytes, seconds] = await fast();
      expect(bytes).toBe(BIG);
      expect(seconds).toBeLessThan(BIG / RATE / 4); // throttled it would take 64 s

      // New circuits (every open one closed): the cookie carries the credit to the next one.
      const closed = await tor.newCircuits();
      expect(closed.length).toBeGreaterThan(0);
      const after = await page.goto(`http://${onion}/article.html`, { waitUntil: 'load', timeout: 60_000 });
      expect([200, 304]).toContain(after?.status());
      const [bytes2, seconds2] = await fast();
      expect(bytes2).toBe(BIG);
      expect(seconds2).toBeLessThan(BIG / RATE / 4);
      const circuits = (await tor.control.getInfo('circuit-status'))['circuit-status'] ?? '';
      for (const id of closed) expect(circuits).not.toMatch(new RegExp(`^${id} BUILT`, 'm'));
    } finally {
      await chromium.close();
    }
  });

  it('works with JavaScript off: the refresh notices the payment and continues', async () => {
    await tor.newCircuits(); // a new visitor: a new browser profile on new circuits
    const chromium = await launchChromium({ args: [`--proxy-server=socks5://127.0.0.1:${tor.socksPort}`] });
    try {
      const page = await chromium.browser.newPage();
      await page.setJavaScriptEnabled(false);
      page.setDefaultTimeout(60_000);
      await page.goto(`http://${onion}/`, { waitUntil: 'load' }); // its image uses up the allowance
      await page.setViewport({ width: 360, height: 740 });
      const uri = await payPage(page, '/article.html');
      await page.screenshot({ path: join(ARTIFACTS, 'pay-page-e2e-360-nojs.png'), fullPage: true });
      await payUri(ledger, visitor.keypair, uri);
      const until = Date.now() + 60_000;
      while (!(page.url().endsWith('/article.html') && (await page.title()) === 'article') && Date.now() < until) {
        await page.waitForNavigation({ timeout: 20_000 }).catch(() => undefined);
      }
      expect(page.url()).toBe(`http://${onion}/article.html`);
      expect(await page.title()).toBe('article');
    } finally {
      await chromium.close();
    }
  });
});
