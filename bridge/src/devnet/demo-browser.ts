// The demo's browser visitor: headless Chromium through Tor reads past the free allowance, is shown the
// pay page, and pays its SEP-7 URI from a wallet (the visitor's key, as a phone would after scanning the
// QR code); the page then continues by itself.
import type { Keypair } from '@stellar/stellar-sdk';
import { launchChromium } from './chromium.js';
import type { LedgerHandle } from './ledger/ledger.js';
import { payUri } from './ledger/testing.js';
import { parseSep7Pay } from '../payments/sep7.js';

export interface BrowserVisit {
  uri: string;
  /** From the payment's submission to the page showing the site again. */
  continuedAfterSeconds: number;
  screenshot: string;
}

export async function browserVisitorPays(o: {
  onion: string; socksPort: number; ledger: LedgerHandle; wallet: Keypair; freeBytes: number; screenshot: string; out: (line: string) => void;
}): Promise<BrowserVisit> {
  const chromium = await launchChromium({ args: [`--proxy-server=socks5://127.0.0.1:${o.socksPort}`] });
  try {
    const page = await chromium.browser.newPage();
    page.setDefaultTimeout(60_000);
    await page.setViewport({ width: 390, height: 844 });
    const home = await page.goto(`http://${o.onion}/`, { waitUntil: 'load' });
    o.out(`    browser │ GET / → ${home?.status()} "${await page.title()}"`);
    // Reading a large file uses up the free allowance (the rest would come at the throttled rate).
    const read = (await page.evaluate(`(async () => {
      const r = await fetch('/demo.bin', { cache: 'no-store' }); const reader = r.body.getReader(); let n = 0;
      while (n < ${o.freeBytes + 64 * 1024}) { const { done, value } = await reader.read(); if (done) break; n += value.length; }
      await reader.cancel(); return n; })()`)) as number;
    o.out(`    browser │ read ${Math.round(read / 1024)} KiB of demo.bin: the free allowance is used up`);
    let status: number | undefined;
    for (let i = 0; i < 40 && status !== 402; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 500));
      status = (await page.goto(`http://${o.onion}/`, { waitUntil: 'load' }))?.status();
    }
    if (status !== 402 || !(await page.$('#wallet-link'))) throw new Error(`the browser got HTTP ${status}, not the pay page`);
    const heading = await page.$eval('h1', (h) => h.textContent ?? '');
    const uri = (await page.$eval('#wallet-link', (a) => a.getAttribute('href')))!;
    const sep7 = parseSep7Pay(uri);
    await page.screenshot({ path: o.screenshot, fullPage: true });
    o.out(`    browser │ GET / → 402, the pay page: "${heading}", ${sep7.amount} XLM to ${sep7.destination.slice(0, 8)}…, memo ${sep7.memoType}`);
    o.out(`    browser │ screenshot ${o.screenshot}`);
    const continued = page.waitForFunction('location.pathname === "/" && !document.querySelector(".paywall")', { timeout: 30_000 });
    const paidAt = performance.now();
    const hash = await payUri(o.ledger, o.wallet, uri);
    o.out(`    wallet  │ paid the QR code's URI from the visitor's account: transaction ${hash.slice(0, 16)}…`);
    await continued;
    const continuedAfterSeconds = (performance.now() - paidAt) / 1000;
    o.out(`    browser │ the page continued to / by itself ${continuedAfterSeconds.toFixed(1)} s later: "${await page.title()}"`);
    return { uri, continuedAfterSeconds, screenshot: o.screenshot };
  } finally {
    await chromium.close();
  }
}
