// The pay page's answers on the site's own origin, under /.well-known/torplus/pay/: the page again
// (what the <noscript> refresh loads: it shows what arrived, and continues to where the visitor was
// going once the request is paid), its status as JSON for the page's script, "I have paid", and a form
// for a transaction signed offline. A loopback server in the primary process, where the payments
// service is; the gateway routes the prefix here (unmetered, so a throttled visitor gets it at once).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.js';
import type { Health, Service } from '../../service.js';
import type { PaymentNote, PaymentRequest } from '../../payments/types.js';
import { esc } from '../../util/html.js';
import { closeGracefully, listen } from '../listeners.js';
import type { PayPageStrings } from './languages/index.js';
import { fill } from './languages/strings.js';
import { newNonce, noteText, page, PAY_PREFIX, payUrls, renderPayPage, type PayPageView } from './pay-page.js';
import { languageOf, pageHeaders, returnPath, siteOf } from './paywall.js';
import { requestViewOf } from './request-view.js';
import { DEFAULT_TEMPLATE, parseTemplate, type PayTemplate } from './template.js';
import { readForm, sameOrigin } from './form.js';

/** What the pay page needs of the payments service (injected). */
export interface PaywallPayments {
  getRequest(id: string): Promise<PaymentRequest | undefined>;
  requestJson(r: PaymentRequest): Record<string, unknown>;
  notesOf(id: string): Promise<PaymentNote[]>;
  /** Resolves once the payments seen so far are handled (the account's stream). */
  idle(): Promise<void>;
  submitXdr(id: string, xdr: unknown, signal?: AbortSignal): Promise<unknown>;
  submitHash(id: string, hash: unknown, signal?: AbortSignal): Promise<unknown>;
  /** False while the bridge cannot reach Horizon (its payment stream is failing). */
  online(): boolean;
}

export interface PaywallServerOptions {
  payments: PaywallPayments;
  throttleBytesPerSec: number;
  /** PAYWALL_TEMPLATE's text. */
  template?: string;
  log: Logger;
  languages?: readonly PayPageStrings[];
  now?: () => number;
}

/** How long "I have paid" waits for the payments in hand to be handled. */
const CHECK_WAIT_MS = 3000;
const ROUTE = /^\/\.well-known\/torplus\/pay\/([A-Za-z0-9_-]{8,80})(\/status|\/check|\/submit)?$/;

export class PaywallServer implements Service {
  readonly name = 'paywall';
  private readonly o: PaywallServerOptions;
  private readonly template: PayTemplate;
  private readonly now: () => number;
  private server: Server | undefined;
  private port = 0;

  constructor(o: PaywallServerOptions) {
    this.o = o;
    this.template = o.template === undefined ? DEFAULT_TEMPLATE : parseTemplate(o.template);
    this.now = o.now ?? Date.now;
  }

  /** Where the gateway forwards PAY_PREFIX. Valid after start. */
  url(): URL {
    return new URL(`http://127.0.0.1:${this.port}/`);
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.o.log.warn(`pay page: ${err.message}`, { service: this.name });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 20_000;
    server.keepAliveTimeout = 5_000;
    this.server = server;
    this.port = await listen(server, 0, '127.0.0.1');
  }

  async stop(): Promise<void> {
    if (this.server) await closeGracefully(this.server, 1000);
    this.server = undefined;
  }

  health(): Health {
    return { ok: this.server !== undefined, detail: this.server ? `pay page answers on ${this.url().host}` : 'not started' };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://bridge.invalid');
    const m = ROUTE.exec(url.pathname);
    const t = languageOf(req, this.o.languages);
    const returnTo = returnPath(url.searchParams.get('return') ?? '/');
    const request = m ? await this.o.payments.getRequest(m[1]!) : undefined;
    if (!m || !request) return this.notFound(req, res, t, returnTo);
    const action = m[2] ?? '';
    const method = req.method ?? 'GET';
    if (action === '/status' && (method === 'GET' || method === 'HEAD')) return this.status(res, request, t);
    if (action === '' && (method === 'GET' || method === 'HEAD')) {
      if (request.status === 'paid') return redirect(res, returnTo);
      return this.send(res, 402, await this.render(req, request, t, returnTo, { checked: url.searchParams.get('checked') === '1' }));
    }
    if (action === '/check' && method === 'POST') return this.check(req, res, request, returnTo);
    if (action === '/submit' && (method === 'GET' || method === 'HEAD')) return this.send(res, 200, this.submitPage(req, request, t, returnTo));
    if (action === '/submit' && method === 'POST') return this.submit(req, res, request, t, returnTo);
    res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: action === '/check' ? 'POST' : action === '/submit' ? 'GET, POST' : 'GET' });
    res.end('method not allowed\n');
  }

  /** The request's state and what arrived, in the visitor's language, for the page's script. */
  private async status(res: ServerResponse, request: PaymentRequest, t: PayPageStrings): Promise<void> {
    const f = (s: string, x: Record<string, string | number> = {}) => fill(s, x, String);
    const notes = await this.o.payments.notesOf(request.id);
    const lines = [request.status === 'paid' ? f(t.paid) : !this.o.payments.online() ? f(t.networkDown) : f(t.waiting), ...notes.map((n) => noteText(n, t, f))];
    const body = JSON.stringify({ state: request.status, expiresAt: new Date(request.expiresAt).toISOString(), lines });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  }

  /** "I have paid": wait for the payments in hand, then continue if paid, else show the page again. */
  private async check(req: IncomingMessage, res: ServerResponse, request: PaymentRequest, returnTo: string): Promise<void> {
    if (!sameOrigin(req)) return forbidden(res);
    await readForm(req).catch(() => undefined); // nothing in it is needed; read it so the connection stays usable
    await Promise.race([this.o.payments.idle(), new Promise((r) => setTimeout(r, CHECK_WAIT_MS).unref())]);
    const now = (await this.o.payments.getRequest(request.id)) ?? request;
    if (now.status === 'paid') return redirect(res, returnTo);
    // Post/redirect/get: a reload of the page does not post again.
    redirect(res, `${payUrls(request.id, returnTo).page}&checked=1`);
  }

  /** A transaction signed offline (XDR) or the hash of one the visitor submitted. */
  private async submit(req: IncomingMessage, res: ServerResponse, request: PaymentRequest, t: PayPageStrings, returnTo: string): Promise<void> {
    if (!sameOrigin(req)) return forbidden(res);
    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch (err) {
      return this.send(res, 400, this.submitPage(req, request, t, returnTo, (err as Error).message));
    }
    const xdr = form.get('xdr')?.trim();
    const hash = form.get('hash')?.trim();
    try {
      if (xdr) await this.o.payments.submitXdr(request.id, xdr);
      else if (hash) await this.o.payments.submitHash(request.id, hash);
      else return this.send(res, 400, this.submitPage(req, request, t, returnTo, `${t.xdrLabel} / ${t.hashLabel}?`));
    } catch (err) {
      return this.send(res, 422, this.submitPage(req, request, t, returnTo, (err as Error).message));
    }
    redirect(res, returnTo);
  }

  private async render(req: IncomingMessage, request: PaymentRequest, t: PayPageStrings, returnTo: string, extra: Partial<PayPageView>): Promise<{ nonce: string; html: string }> {
    const view = requestViewOf(this.o.payments.requestJson(request));
    const nonce = newNonce();
    if (!view) return { nonce, html: page({ site: siteOf(req), nonce }, t, this.template, '', `<main><p>${esc(t.notFound)}</p></main>`, false) };
    const state = request.status === 'open' ? 'open' : request.status;
    const html = renderPayPage({
      request: view, state, notes: await this.o.payments.notesOf(request.id), returnTo, site: siteOf(req), networkDown: !this.o.payments.online(),
      throttleBytesPerSec: this.o.throttleBytesPerSec, now: this.now(), nonce, ...extra,
    }, t, this.template);
    return { nonce, html };
  }

  private submitPage(req: IncomingMessage, request: PaymentRequest, t: PayPageStrings, returnTo: string, error?: string): { nonce: string; html: string } {
    const nonce = newNonce();
    const urls = payUrls(request.id, returnTo);
    const f = (s: string) => fill(s, {}, esc);
    const problem = error ? `<div class="status bad" role="alert"><p>${f(t.refused)} ${esc(error)}</p></div>` : '';
    const body = `<div class="paywall"><main>
<h1>${f(t.offlineHeading)}</h1>
<p>${f(t.offlineHelp)}</p>
${problem}
<form method="post" action="${esc(urls.submit)}">
<label for="xdr">${f(t.xdrLabel)}</label><textarea id="xdr" name="xdr" spellcheck="false" autocomplete="off"></textarea>
<label for="hash">${f(t.hashLabel)}</label><input id="hash" name="hash" type="text" spellcheck="false" autocomplete="off" pattern="[0-9a-fA-F]{64}">
<p><button type="submit">${f(t.submitButton)}</button></p>
</form>
<p><a href="${esc(urls.page)}">${f(t.back)}</a></p>
</main></div>`;
    return { nonce, html: page({ site: siteOf(req), nonce }, t, this.template, '', body, false) };
  }

  private notFound(req: IncomingMessage, res: ServerResponse, t: PayPageStrings, returnTo: string): void {
    const nonce = newNonce();
    const body = `<div class="paywall"><main><p class="status bad">${esc(t.notFound)}</p><p><a class="button" href="${esc(returnTo)}">${esc(t.freshRequest)}</a></p></main></div>`;
    this.send(res, 404, { nonce, html: page({ site: siteOf(req), nonce }, t, this.template, '', body, false) });
  }

  private send(res: ServerResponse, status: number, p: { nonce: string; html: string }): void {
    res.writeHead(status, { ...pageHeaders(p.nonce), 'content-length': Buffer.byteLength(p.html) });
    res.end(res.req.method === 'HEAD' ? undefined : p.html);
  }
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

function forbidden(res: ServerResponse): void {
  const body = 'Refused: this form must be sent from the pay page itself (cross-site post).\n';
  res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export { PAY_PREFIX };
