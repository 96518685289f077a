// The meter's side of the pay page: whether a request gets it, and the 402 answer itself. Used by the
// single-process gateway's meter and by each proxy worker's (from the request's JSON, which the primary
// sends the workers ready-made). Erasable TypeScript only: the proxy workers load this as is.
import type { IncomingMessage } from 'node:http';
import { esc } from '../../util/html.js';
import { LANGUAGES, pickLanguage, type PayPageStrings } from './languages/index.js';
import { isNavigation } from './navigation.js';
import { newNonce, page, payPageCsp, renderPayPage } from './pay-page.js';
import { requestViewOf, type RequestView } from './request-view.js';
import { DEFAULT_TEMPLATE, parseTemplate, type PayTemplate } from './template.js';

export type PaywallMode = 'page' | 'throttle';

export interface PaywallOptions {
  /** PAYWALL: `page` answers a navigation past the allowance with the pay page; `throttle` never does. */
  mode: PaywallMode;
  /** PAYWALL_TEMPLATE's text, parsed; the bridge's own page otherwise. */
  template?: PayTemplate;
  throttleBytesPerSec: number;
  languages?: readonly PayPageStrings[];
  now?: () => number;
}

/** What a proxy worker is told to build its Paywall from (JSON in its configuration). */
export interface PaywallSettings {
  /** PAYWALL_TEMPLATE's text; the bridge's own page otherwise. */
  template?: string;
  throttleBytesPerSec: number;
}

/** The pay page's Paywall from its settings (PAYWALL=page). */
export function paywallOf(s: PaywallSettings): Paywall {
  return new Paywall({ mode: 'page', throttleBytesPerSec: s.throttleBytesPerSec, ...(s.template !== undefined ? { template: parseTemplate(s.template) } : {}) });
}

export interface PaywallAnswer {
  headers: Record<string, string>;
  body: string;
}

/** How soon the "preparing" page (no request yet) reloads. */
const PREPARING_REFRESH_SECONDS = 2;
const MAX_VIEWS = 512;

export class Paywall {
  private readonly o: PaywallOptions;
  private readonly template: PayTemplate;
  private readonly languages: readonly PayPageStrings[];
  private readonly now: () => number;
  /** Parsed request JSON by its text: the workers get the same string for every page of one request. */
  private readonly views = new Map<string, RequestView | undefined>();

  constructor(o: PaywallOptions) {
    this.o = o;
    this.template = o.template ?? DEFAULT_TEMPLATE;
    this.languages = o.languages ?? LANGUAGES;
    this.now = o.now ?? Date.now;
  }

  /** The request may be answered with the pay page (once its visitor is throttled). */
  wants(req: IncomingMessage): boolean {
    return this.o.mode === 'page' && isNavigation(req);
  }

  /**
   * The pay page for `request` (its JSON, as an object or as text), with the payment headers (which
   * set the session cookie). Undefined when the JSON lacks what the page needs: the visitor is then
   * throttled as without the page, never shown a broken one.
   */
  page(req: IncomingMessage, request: unknown, payHeaders: readonly string[]): PaywallAnswer | undefined {
    const view = this.view(request);
    if (!view) return undefined;
    const nonce = newNonce();
    const body = renderPayPage(
      { request: view, state: 'open', notes: [], returnTo: returnPath(req.url), site: siteOf(req), throttleBytesPerSec: this.o.throttleBytesPerSec, now: this.now(), nonce },
      this.strings(req),
      this.template,
    );
    return { headers: pageHeaders(nonce, payHeaders), body };
  }

  /** The visitor is throttled and its payment request is still being made: a page that reloads itself. */
  preparing(req: IncomingMessage, payHeaders: readonly string[]): PaywallAnswer {
    const t = this.strings(req);
    const nonce = newNonce();
    const body = page({ site: siteOf(req), nonce }, t, this.template, `<meta http-equiv="refresh" content="${PREPARING_REFRESH_SECONDS}">`,
      `<div class="paywall"><main><h1>${esc(t.heading)}</h1><p class="status" role="status">${esc(t.preparing)}</p></main></div>`, false);
    return { headers: { ...pageHeaders(nonce, payHeaders), 'retry-after': String(PREPARING_REFRESH_SECONDS) }, body };
  }

  strings(req: IncomingMessage): PayPageStrings {
    return languageOf(req, this.languages);
  }

  private view(request: unknown): RequestView | undefined {
    if (typeof request !== 'string') return requestViewOf(request);
    if (this.views.has(request)) return this.views.get(request);
    let view: RequestView | undefined;
    try {
      view = requestViewOf(JSON.parse(request));
    } catch {
      view = undefined;
    }
    if (this.views.size >= MAX_VIEWS) this.views.delete(this.views.keys().next().value!);
    this.views.set(request, view);
    return view;
  }
}

/** The headers of every page here: HTML, never cached, under the page's CSP, and the payment headers. */
export function pageHeaders(nonce: string, payHeaders: readonly string[] = []): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': payPageCsp(nonce),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
  for (let i = 0; i + 1 < payHeaders.length; i += 2) h[payHeaders[i]!] = payHeaders[i + 1]!;
  return h;
}

/** Where the visitor was going: a path on this origin, never another site (an open redirect). */
export function returnPath(url: string | undefined): string {
  if (!url || url.length > 2000 || !url.startsWith('/') || url.startsWith('//') || url.startsWith('/\\') || /[\x00-\x20\x7f]/.test(url)) return '/';
  return url;
}

/** The pay page's words in the language the visitor's Accept-Language asks for (English otherwise). */
export function languageOf(req: IncomingMessage, languages: readonly PayPageStrings[] = LANGUAGES): PayPageStrings {
  const v = req.headers['accept-language'];
  return pickLanguage(typeof v === 'string' ? v : undefined, languages);
}

/** The site's name as the visitor reached it, for the title (the Host header, bounded). */
export function siteOf(req: IncomingMessage): string {
  const host = req.headers.host;
  return typeof host === 'string' && host.length > 0 ? host.slice(0, 255) : 'this site';
}
