import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { PaymentsService } from '../../payments/payments-service.js';
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import { toApiJson } from './json.js';
import { parse } from './http-errors.js';

/** What the API needs of the payments service (injected). */
export type PaymentsApi = Pick<
  PaymentsService,
  | 'getRequest' | 'requestJson' | 'submitXdr' | 'submitHash' | 'openTab' | 'submitTab' | 'getTab'
  | 'sessionState' | 'receipts' | 'earnings' | 'resolveSession' | 'on' | 'off'
>;

export const SESSION_HEADER = 'torplus-session';

const id = z.string().regex(/^[A-Za-z0-9_-]{8,80}$/, 'expected an id as given by the bridge');
const submitBody = z.union([
  z.object({ xdr: z.string().min(1).max(20_000) }).strict(),
  z.object({ hash: z.string().regex(/^[0-9a-f]{64}$/i, 'expected a 64-character hex transaction hash') }).strict(),
]);
const openTabBody = z
  .object({
    request_id: id.optional(),
    session: z.string().min(8).max(200).optional(),
    payer: z.string().regex(/^G[A-Z2-7]{55}$/, 'expected a Stellar account id (G…)'),
  })
  .strict()
  .refine((b) => (b.request_id === undefined) !== (b.session === undefined), 'expected exactly one of request_id and session');
const tabBody = z.object({ xdr: z.string().min(1).max(20_000) }).strict();

function sessionToken(req: Request): string | undefined {
  return req.get(SESSION_HEADER) ?? undefined;
}

/**
 * The visitor-facing payment API: fetch a request, pay it (signed XDR or a transaction hash),
 * tabs, the session's state and receipts, and an SSE stream of payment events.
 */
export function paymentsRouter(payments: PaymentsApi, bodyLimit = '32kb'): Router {
  const r = Router();
  r.use(express.json({ limit: bodyLimit }));

  r.get('/payment-requests/:id', async (req, res) => {
    const request = await payments.getRequest(parse(id, req.params.id));
    if (!request) return void res.status(404).json({ error: 'unknown_request', message: 'no such payment request' });
    res.json(payments.requestJson(request));
  });

  r.post('/payment-requests/:id/payments', async (req, res) => {
    const requestId = parse(id, req.params.id);
    const body = parse(submitBody, req.body);
    const signal = abortOnClose(req, res);
    const receipt = 'xdr' in body ? await payments.submitXdr(requestId, body.xdr, signal) : await payments.submitHash(requestId, body.hash, signal);
    res.status(201).json(toApiJson({ receipt }));
  });

  r.post('/tabs', async (req, res) => {
    const body = parse(openTabBody, req.body);
    const tab = await payments.openTab((body.request_id ?? body.session)!, body.payer, abortOnClose(req, res));
    res.status(201).json(tab);
  });

  r.get('/tabs/:id', async (req, res) => {
    const tab = await payments.getTab(parse(id, req.params.id));
    if (!tab) return void res.status(404).json({ error: 'unknown_tab', message: 'no such tab' });
    res.json(tab);
  });

  r.post('/tabs/:id', async (req, res) => {
    const result = await payments.submitTab(parse(id, req.params.id), parse(tabBody, req.body).xdr);
    res.json(toApiJson(result));
  });

  r.get('/session', async (req, res) => {
    const token = sessionToken(req);
    const state = token ? await payments.sessionState(token) : undefined;
    if (!state) return void res.status(404).json({ error: 'unknown_session', message: `send your session token in the ${SESSION_HEADER} header` });
    res.json(toApiJson(state));
  });

  r.get('/receipts', async (req, res) => {
    const token = sessionToken(req);
    if (!token || !(await payments.resolveSession(token))) return void res.status(404).json({ error: 'unknown_session', message: `send your session token in the ${SESSION_HEADER} header` });
    res.json(toApiJson({ receipts: await payments.receipts(token) }));
  });

  r.get('/events', async (req, res) => {
    const token = sessionToken(req) ?? (typeof req.query.session === 'string' ? req.query.session : undefined);
    const sessionId = token ? await payments.resolveSession(token) : undefined;
    if (!sessionId) return void res.status(404).json({ error: 'unknown_session', message: 'events are per session: pass its token' });
    streamEvents(req, res, payments, (s) => s === sessionId);
  });

  return r;
}

/** Server-sent events: `payment-requested` and `payment-complete`, filtered by session. */
export function streamEvents(req: Request, res: Response, payments: Pick<PaymentsApi, 'on' | 'off'>, include: (sessionId: string) => boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  res.write('retry: 2000\n\n');
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(toApiJson(data))}\n\n`);
  const onRequested = (r: PaymentRequest) => include(r.sessionId) && send('payment-requested', { request: r });
  const onComplete = (c: PaymentComplete) => include(c.request.sessionId) && send('payment-complete', { receipt: c.receipt, requestId: c.request.id });
  payments.on('requested', onRequested);
  payments.on('complete', onComplete);
  const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  req.on('close', () => {
    clearInterval(beat);
    payments.off('requested', onRequested);
    payments.off('complete', onComplete);
  });
}

function abortOnClose(req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new Error('the client went away'));
  });
  void req;
  return ac.signal;
}
