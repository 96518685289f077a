import { randomBytes } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Secret } from '../../../config/secret.js';
import { safeJson } from './format.js';
import { renderDashboard, renderLogin } from './page.js';
import { onionQrSvg } from './qr.js';
import { DashboardSession } from './session.js';
import type { DashboardEvent, DashboardSource } from './source.js';

/** More live streams than an operator opens; beyond this /events answers 503. */
const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;

function securityHeaders(res: Response, nonce?: string): void {
  res.set({
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': [
      "default-src 'none'",
      nonce ? `script-src 'nonce-${nonce}'` : '',
      nonce ? `style-src 'nonce-${nonce}'` : '',
      "connect-src 'self'",
      "img-src 'self' data:",
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].filter(Boolean).join('; '),
  });
}

/**
 * The operator dashboard, mounted at `/` of the API app: `GET /` (HTML), `GET /dashboard.json` (the
 * snapshot) and `GET /events` (SSE). All need the admin token: `Authorization: Bearer <token>`, or
 * the session cookie that `GET /?token=<token>` sets (then 303 to `/`, so the token leaves the URL).
 */
export function dashboardRouter(source: DashboardSource, token: Secret): Router {
  const session = new DashboardSession(token);
  const router = Router();
  let streams = 0;

  const loginPage = (req: Request, res: Response) => {
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(res, nonce);
    res.status(401).set('WWW-Authenticate', 'Bearer').type('html').send(renderLogin({ base: req.baseUrl, nonce }));
  };

  /** For the JSON and SSE routes: no login page, a 401 in JSON. */
  const requireSession = (req: Request, res: Response, next: NextFunction): void => {
    if (session.isAuthorised(req)) return next();
    securityHeaders(res);
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'unauthorized', message: 'this needs the admin token: open /?token=<ADMIN_TOKEN> or send Authorization: Bearer <ADMIN_TOKEN>' });
  };

  router.get('/', async (req, res) => {
    const given = req.query.token;
    if (given !== undefined) {
      if (!session.isToken(given)) return loginPage(req, res);
      securityHeaders(res);
      res.set('Set-Cookie', session.setCookie()).redirect(303, `${req.baseUrl}/`);
      return;
    }
    if (!session.isAuthorised(req)) return loginPage(req, res);
    const snapshot = await source.snapshot();
    const qr = snapshot.onion ? await onionQrSvg(snapshot.onion) : undefined;
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(res, nonce);
    res.type('html').send(renderDashboard(snapshot, qr, { base: req.baseUrl, nonce }));
  });

  router.get('/dashboard.json', requireSession, async (_req, res) => {
    const snapshot = await source.snapshot();
    securityHeaders(res);
    res.type('json').send(safeJson(snapshot));
  });

  router.get('/events', requireSession, (req, res) => {
    securityHeaders(res);
    if (streams >= MAX_STREAMS) {
      res.status(503).json({ error: 'busy', message: 'too many live streams are open' });
      return;
    }
    streams++;
    res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    res.write('retry: 3000\n: connected\n\n');
    const send = (e: DashboardEvent) => {
      let data: string;
      try {
        data = safeJson({ type: e.type, at: e.at, text: e.text, data: e.data });
      } catch {
        return;
      }
      const type = String(e.type).replace(/[^a-z-]/g, '') || 'message';
      res.write(`event: ${type}\ndata: ${data}\n\n`);
    };
    const unsubscribe = source.subscribe(send);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      streams--;
      clearInterval(heartbeat);
      unsubscribe();
    };
    req.on('close', close);
    res.on('close', close);
  });

  return router;
}
