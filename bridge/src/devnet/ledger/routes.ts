// The Horizon-compatible HTTP API (express 5). Collections answer pages, or streams when the client
// sends `Accept: text/event-stream`.
import { StrKey } from '@stellar/stellar-sdk';
import express, { type Request, type Response } from 'express';
import { FriendbotError, nowToken, type LedgerEngine } from './engine.js';
import { isProblem, pageJson, parseCursor, parsePage, type Entry } from './paging.js';
import {
  accountJson,
  feeStatsJson,
  ledgerJson,
  operationJson,
  problems,
  rootJson,
  transactionJson,
  type Problem,
} from './records.js';
import { lastEventId, type StreamHub } from './sse.js';
import type { OpFilter, PageQuery } from './store.js';

const HAL = 'application/hal+json; charset=utf-8';

function send(res: Response, body: unknown, status = 200): void {
  res.status(status).type(isProblem(body) ? 'application/problem+json; charset=utf-8' : HAL);
  res.send(JSON.stringify(body));
}
const problem = (res: Response, p: Problem) => send(res, p, p.status);
const baseUrl = (req: Request) => `${req.protocol}://${req.get('host') ?? '127.0.0.1'}`;
const wantsStream = (req: Request) => (req.get('accept') ?? '').includes('text/event-stream');
const param = (req: Request, name: string): string => String(req.params[name] ?? '');

export function createApp(engine: LedgerEngine, hub: StreamHub): express.Express {
  const { store } = engine;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // CORS, as Horizon: browsers (the demo page) may call the ledger directly.
  app.use((req, res, next) => {
    res.set('Access-Control-Allow-Origin', '*');
    if (req.method !== 'OPTIONS') return next();
    res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.set('Access-Control-Allow-Headers', req.get('access-control-request-headers') ?? 'Content-Type');
    res.status(204).end();
  });

  /** Serves a collection: a page, or a stream of what comes after the cursor. */
  function collection(req: Request, res: Response, fetch: (base: string, q: PageQuery) => Entry[]): void {
    const base = baseUrl(req);
    const now = nowToken(engine.latestLedger().sequence);
    if (wantsStream(req)) {
      const cursor = parseCursor(typeof req.query.cursor === 'string' ? req.query.cursor : undefined, now);
      if (isProblem(cursor)) return problem(res, cursor);
      const includeFailed = req.query.include_failed === 'true';
      const after = lastEventId(req) ?? cursor ?? -1n;
      hub.open(req, res, after, (a, limit) => fetch(base, { cursor: a, order: 'asc', limit, includeFailed }));
      return;
    }
    const page = parsePage(req.query as Record<string, unknown>, now);
    if (isProblem(page)) return problem(res, page);
    send(res, pageJson(`${base}${req.path}`, page, fetch(base, page)));
  }

  const ops = (filter: OpFilter) => (req: Request, res: Response) =>
    collection(req, res, (base, q) =>
      store.listOperations(filter, q).map((o) => ({ token: o.id, json: operationJson(base, o) })),
    );
  const txs = (filter: { account?: string; ledger?: number }) => (req: Request, res: Response) =>
    collection(req, res, (base, q) =>
      store.listTransactions(filter, q).map((t) => ({ token: t.id, json: transactionJson(base, t) })),
    );

  app.get('/', (req, res) => send(res, rootJson(baseUrl(req), engine.passphrase, engine.latestLedger())));
  app.get('/fee_stats', (_req, res) => send(res, feeStatsJson(engine.latestLedger())));

  const friendbot = (req: Request, res: Response) => {
    const addr = typeof req.query.addr === 'string' ? req.query.addr : (req.body as Record<string, unknown> | undefined)?.addr;
    try {
      const r = engine.friendbot(typeof addr === 'string' ? addr : '');
      send(res, transactionJson(baseUrl(req), r.tx));
    } catch (e) {
      if (e instanceof FriendbotError) return problem(res, problems.badRequest(e.message, 'addr'));
      throw e;
    }
  };
  app.get('/friendbot', friendbot);
  app.post('/friendbot', express.urlencoded({ extended: false }), friendbot);

  // --- accounts ---------------------------------------------------------------------------------
  const accountId = (req: Request, res: Response): string | undefined => {
    const id = param(req, 'id');
    if (StrKey.isValidEd25519PublicKey(id)) return id;
    problem(res, problems.badRequest(`invalid account id: ${id}`, 'account_id'));
    return undefined;
  };
  app.get('/accounts/:id', (req, res) => {
    const id = accountId(req, res);
    if (id === undefined) return;
    const a = store.getAccount(id);
    if (!a) return problem(res, problems.notFound());
    send(res, accountJson(baseUrl(req), a));
  });
  app.get('/accounts/:id/data/:key', (_req, res) => problem(res, problems.notFound())); // no data entries here
  app.get('/accounts/:id/payments', (req, res) => {
    const id = accountId(req, res);
    if (id !== undefined) ops({ account: id, paymentsOnly: true })(req, res);
  });
  app.get('/accounts/:id/operations', (req, res) => {
    const id = accountId(req, res);
    if (id !== undefined) ops({ account: id })(req, res);
  });
  app.get('/accounts/:id/transactions', (req, res) => {
    const id = accountId(req, res);
    if (id !== undefined) txs({ account: id })(req, res);
  });

  // --- global collections -----------------------------------------------------------------------
  app.get('/payments', ops({ paymentsOnly: true }));
  app.get('/operations', ops({}));
  app.get('/transactions', txs({}));
  app.get('/ledgers', (req, res) =>
    collection(req, res, (base, q) =>
      store.listLedgers(q).map((l) => ({ token: BigInt(l.sequence) << 32n, json: ledgerJson(base, l) })),
    ),
  );

  // --- single records ---------------------------------------------------------------------------
  app.get('/ledgers/:seq', (req, res) => {
    const seq = Number(param(req, 'seq'));
    const l = Number.isSafeInteger(seq) ? store.getLedger(seq) : undefined;
    if (!l) return problem(res, problems.notFound());
    send(res, ledgerJson(baseUrl(req), l));
  });
  app.get('/ledgers/:seq/transactions', (req, res) => {
    const seq = Number(param(req, 'seq'));
    if (!Number.isSafeInteger(seq) || !store.getLedger(seq)) return problem(res, problems.notFound());
    txs({ ledger: seq })(req, res);
  });
  app.get('/operations/:id', (req, res) => {
    const raw = param(req, 'id');
    const o = /^[0-9]{1,19}$/.test(raw) ? store.getOperation(BigInt(raw)) : undefined;
    if (!o) return problem(res, problems.notFound());
    send(res, operationJson(baseUrl(req), o));
  });

  const txByHash = (req: Request, res: Response) => {
    const hash = param(req, 'hash').toLowerCase();
    const t = /^[0-9a-f]{64}$/.test(hash) ? store.getTransaction(hash) : undefined;
    if (!t) problem(res, problems.notFound());
    return t ? { t, hash } : undefined;
  };
  app.get('/transactions/:hash', (req, res) => {
    const found = txByHash(req, res);
    if (found) send(res, transactionJson(baseUrl(req), found.t, found.hash));
  });
  app.get('/transactions/:hash/operations', (req, res) => {
    const found = txByHash(req, res);
    if (found) ops({ txId: found.t.id })(req, res);
  });
  app.get('/transactions/:hash/payments', (req, res) => {
    const found = txByHash(req, res);
    if (found) ops({ txId: found.t.id, paymentsOnly: true })(req, res);
  });

  // --- submission -------------------------------------------------------------------------------
  app.post('/transactions', express.urlencoded({ extended: false, limit: '512kb' }), (req, res) => {
    const tx = (req.body as Record<string, unknown> | undefined)?.tx;
    if (typeof tx !== 'string' || tx === '') return problem(res, problems.badRequest('tx: required', 'tx'));
    const r = engine.submit(tx);
    if (r.status === 'malformed') return problem(res, problems.transactionMalformed(r.envelopeXdr, r.detail));
    if (r.status === 'rejected') return problem(res, problems.transactionFailed(r.envelopeXdr, r.resultXdr, r.codes));
    if (!r.tx.successful) {
      return problem(res, problems.transactionFailed(r.tx.envelopeXdr, r.tx.resultXdr, r.tx.resultCodes!));
    }
    send(res, transactionJson(baseUrl(req), r.tx));
  });

  app.use((_req: Request, res: Response) => problem(res, problems.notFound()));
  app.use((err: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return problem(res, problems.badRequest((err as Error).message ?? 'bad request'));
    }
    console.error('ledger: internal error:', err);
    if (!res.headersSent) problem(res, problems.serverError());
  });
  return app;
}
