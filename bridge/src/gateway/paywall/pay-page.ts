// The pay page a Tor Browser visitor sees past the free allowance: what is asked and what it buys, a
// SEP-7 QR code for a phone wallet, the same URI as a link, the three values to copy into any other
// wallet, the expiry, and an "I have paid" button. It works with JavaScript off (a <noscript> meta
// refresh re-checks; the form posts), and with JavaScript on it follows the payment and continues to
// the page the visitor asked for. Everything is inline under a per-response CSP nonce: no request
// leaves for anywhere else. Erasable TypeScript only: the proxy workers render it too.
import { randomBytes } from 'node:crypto';
import { esc } from '../../util/html.js';
import { fill, type PayPageStrings } from './languages/strings.js';
import { PAY_SCRIPT } from './pay-script.js';
import { PAY_STYLES } from './pay-styles.js';
import { qrSvg } from './qr-svg.js';
import type { PayNote, RequestView } from './request-view.js';
import { DEFAULT_TEMPLATE, type PayTemplate } from './template.js';

/** Where the bridge answers about payment requests, on the site's own origin (onion port 80/443). */
export const PAY_PREFIX = '/.well-known/torplus/pay/';

/** How often a page without JavaScript re-checks. */
export const REFRESH_SECONDS = 5;

export interface PayPageView {
  request: RequestView;
  /** 'open' unless the page is shown for a request that is paid or expired. */
  state: 'open' | 'expired' | 'paid';
  /** What the bridge saw of payments for this request (short, wrong asset, late…). */
  notes: PayNote[];
  /** The visitor pressed "I have paid" and nothing has arrived. */
  checked?: boolean;
  /** The bridge cannot reach Horizon right now. */
  networkDown?: boolean;
  /** The path (and query) the visitor asked for: where the page continues once paid. */
  returnTo: string;
  /** The site's name as the visitor reached it (the Host header). */
  site: string;
  throttleBytesPerSec: number;
  now: number;
  nonce: string;
}

/** The page's own URLs for one request. */
export function payUrls(requestId: string, returnTo: string): { page: string; status: string; check: string; submit: string } {
  const base = PAY_PREFIX + encodeURIComponent(requestId);
  const ret = `?return=${encodeURIComponent(returnTo)}`;
  return { page: base + ret, status: `${base}/status`, check: `${base}/check${ret}`, submit: `${base}/submit${ret}` };
}

/** A fresh CSP nonce, one per response. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** The Content-Security-Policy of every page here: nothing but this response's own style and script. */
export function payPageCsp(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src data:; connect-src 'self'; ` +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
}

export function renderPayPage(v: PayPageView, t: PayPageStrings, template: PayTemplate = DEFAULT_TEMPLATE): string {
  const r = v.request;
  const urls = payUrls(r.id, v.returnTo);
  const f = (text: string, values: Record<string, string | number> = {}) => fill(text, values, esc);
  let main: string;
  if (v.state === 'paid') {
    main = `<p class="status ok" role="status">${f(t.paid)}</p><p><a class="button" href="${esc(v.returnTo)}">${f(t.back)}</a></p>`;
  } else if (v.state === 'expired') {
    main = `<p class="status bad" role="status">${f(t.expired)}</p>${notesHtml(v, t, f)}<p><a class="button" href="${esc(v.returnTo)}">${f(t.freshRequest)}</a></p>`;
  } else {
    main = openRequestHtml(v, t, f, urls);
  }
  const body = `<main>
<p class="site muted">${esc(v.site)}</p>
<h1>${f(t.heading)}</h1>
<p class="lead">${f(t.lead, { amount: trimAmount(r.amount), mib: Math.round(r.creditBytes / 1048576) })}</p>
<p class="muted">${f(t.slowly, { rate: rate(v.throttleBytesPerSec) })}</p>
${main}
<footer class="muted">${f(t.footer)}</footer>
</main>`;
  const refresh = v.state === 'paid' ? '' : `<noscript><meta http-equiv="refresh" content="${REFRESH_SECONDS};url=${esc(urls.page)}"></noscript>`;
  const data = v.state === 'open'
    ? ` data-status="${esc(urls.status)}" data-return="${esc(v.returnTo)}" data-page="${esc(urls.page)}" data-copied="${f(t.copied)}"`
    : '';
  return page(v, t, template, refresh, `<div class="paywall"${data}>${body}</div>`, v.state === 'open');
}

function openRequestHtml(v: PayPageView, t: PayPageStrings, f: (s: string, x?: Record<string, string | number>) => string, urls: ReturnType<typeof payUrls>): string {
  const r = v.request;
  const minutes = Math.max(0, Math.round((r.expiresAt - v.now) / 60_000));
  const time = new Date(r.expiresAt).toISOString().slice(11, 16);
  const status = v.networkDown ? f(t.networkDown) : v.checked && v.notes.length === 0 ? f(t.nothingYet) : f(t.waiting);
  return `<section class="scan">
<h2>${f(t.scan)}</h2>
${qrSvg(r.uri, t.scan)}
<p><a class="button" id="wallet-link" href="${esc(r.uri)}">${f(t.openWallet)}</a></p>
</section>
<section class="manual">
<h2>${f(t.manualHeading)}</h2>
<dl>
${field('destination', t.destination, r.destination, t, f)}
${field('amount', t.amount, `${trimAmount(r.amount)}`, t, f, ' XLM')}
${field('memo', t.memo, r.memo, t, f)}
</dl>
<p class="muted">${f(t.memoType, { hex: r.memoHex })}</p>
</section>
<div id="status" class="status" role="status" aria-live="polite"><p>${status}</p>${notesHtml(v, t, f)}</div>
<p class="muted">${f(t.expires, { time, minutes })}</p>
<form method="post" action="${esc(urls.check)}"><button type="submit">${f(t.checkButton)}</button></form>
<p><a href="${esc(urls.submit)}">${f(t.offlineLink)}</a></p>`;
}

function field(id: string, label: string, value: string, t: PayPageStrings, f: (s: string) => string, unit = ''): string {
  // Without JavaScript the value is selectable with one tap (user-select: all); the script shows the button.
  return `<div><dt>${f(label)}</dt><dd><code id="v-${id}" class="value">${esc(value)}</code>${esc(unit)} <button type="button" class="copy" data-copy="v-${id}" hidden>${f(t.copy)}</button></dd></div>`;
}

function notesHtml(v: PayPageView, t: PayPageStrings, f: (s: string, x?: Record<string, string | number>) => string): string {
  if (v.notes.length === 0) return '';
  return `<ul class="notes">${v.notes.map((n) => `<li>${noteText(n, t, f)}</li>`).join('')}</ul>`;
}

/** One observed payment, in the visitor's language. */
export function noteText(n: PayNote, t: PayPageStrings, f: (s: string, x?: Record<string, string | number>) => string): string {
  switch (n.kind) {
    case 'short':
      return f(t.noteShort, { received: trimAmount(n.received), asked: trimAmount(n.asked) });
    case 'asset':
      return f(t.noteAsset, { received: trimAmount(n.received), asset: n.asset });
    case 'expired':
      return f(t.noteExpired, { received: trimAmount(n.received) });
    case 'memo':
      return f(t.noteMemo, { received: trimAmount(n.received), memo: n.memo });
  }
}

/** The page around `body`: the publisher's template (PAYWALL_TEMPLATE) or the default one. */
export function page(v: { site: string; nonce: string }, t: PayPageStrings, template: PayTemplate, extraHead: string, body: string, script: boolean): string {
  const head = `<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>${esc(t.title)} · ${esc(v.site)}</title>
${extraHead}
<style nonce="${esc(v.nonce)}">${PAY_STYLES}</style>`;
  const scripted = script ? `${body}\n<script nonce="${esc(v.nonce)}">${PAY_SCRIPT}</script>` : body;
  return template.render({ lang: t.lang, dir: t.dir, title: `${esc(t.title)} · ${esc(v.site)}`, head, body: scripted, nonce: esc(v.nonce), site: esc(v.site) });
}

/** "0.1000000" → "0.1". */
export function trimAmount(amount: string): string {
  return /^\d+\.\d+$/.test(amount) ? amount.replace(/\.?0+$/, '') : amount;
}

function rate(bytesPerSec: number): string {
  return bytesPerSec >= 1048576 ? `${(bytesPerSec / 1048576).toFixed(1)} MiB/s` : `${Math.max(1, Math.round(bytesPerSec / 1024))} KiB/s`;
}
