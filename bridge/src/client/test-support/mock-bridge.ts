// A small HTTP server that emulates the bridge's contract for the client's tests, around the REAL payments
// service (payments-service.ts on the local ledger): payment requests (requestJson), tabs (verified by
// verifyTabTransaction), on-chain payments (submitted to the ledger). Only the metering is emulated here,
// simply: one anonymous visitor (one circuit) with a free allowance, then credit bought by payments; an
// unpaid visitor is throttled; `TorPlus-Payment-Request` and `TorPlus-Session` on every response past the
// allowance; 402 + the request JSON for `Accept-Payment: stellar`.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPaymentError } from '../../payments/errors.js';
import type { PaymentsService } from '../../payments/payments-service.js';
import type { PaymentRequest } from '../../payments/types.js';

export interface MockBridgeOptions {
  payments: PaymentsService;
  content: Buffer;
  /** The onion origin the API is announced at, e.g. http://xyz.onion:8000. */
  apiOrigin: string;
  freeBytes: number;
  throttleBytesPerSec: number;
  /** Serve Range requests (and Accept-Ranges, ETag). Default true. */
  ranges?: boolean;
  /** A payment speeds up responses already throttled (as the real meter does). Default true. */
  liftRunning?: boolean;
  /** Cut (destroy) a response when the visitor runs out of allowance and credit, instead of throttling. */
  cutWhenUnpaid?: boolean;
  /** Cut the first content response after this many bytes. */
  cutOnceAt?: number;
  /** Answer 402 to Accept-Payment: stellar. Default true. */
  honorAcceptPayment?: boolean;
  /** Never credit payments to the meter (a broken bridge). */
  ignorePayments?: boolean;
}

interface Visitor {
  freeLeft: number;
  credit: number;
  token: string | undefined;
  sessionId: string | undefined;
  request: PaymentRequest | undefined;
  wakers: Set<() => void>;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
}

const SLICE = 16 * 1024;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export class MockBridge {
  readonly seen: SeenRequest[] = [];
  readonly server: http.Server;
  readonly etag: string;
  private readonly o: MockBridgeOptions;
  private readonly anonymous: Visitor;
  private readonly bySession = new Map<string, Visitor>();
  private cutDone = false;

  constructor(o: MockBridgeOptions) {
    this.o = o;
    this.etag = `"${createHash('sha256').update(o.content).digest('hex').slice(0, 16)}"`;
    this.anonymous = { freeLeft: o.freeBytes, credit: 0, token: undefined, sessionId: undefined, request: undefined, wakers: new Set() };
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) json(res, 500, { error: 'internal', message: err.message });
        else res.destroy();
      });
    });
    o.payments.on('complete', (c) => {
      if (this.o.ignorePayments) return;
      const v = this.bySession.get(c.request.sessionId);
      if (!v) return;
      v.credit += c.receipt.creditBytes;
      v.request = undefined;
      for (const wake of [...v.wakers]) wake();
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Content requests seen (not the API). */
  get contentRequests(): SeenRequest[] {
    return this.seen.filter((s) => !s.url.startsWith('/v1/'));
  }

  private async visitorOf(req: IncomingMessage): Promise<Visitor> {
    const token = req.headers['torplus-session'];
    if (typeof token === 'string') {
      const id = await this.o.payments.resolveSession(token);
      if (id) {
        let v = this.bySession.get(id);
        if (!v) {
          v = { freeLeft: 0, credit: 0, token, sessionId: id, request: undefined, wakers: new Set() };
          this.bySession.set(id, v);
        }
        return v;
      }
    }
    return this.anonymous;
  }

  private async ensureRequest(v: Visitor): Promise<PaymentRequest> {
    if (v.request && v.request.status === 'open' && v.request.expiresAt > Date.now()) return v.request;
    const r = await this.o.payments.requestPayment('circuit:1', 'tor', v.token);
    if (r.sessionToken) {
      v.token = r.sessionToken;
      v.sessionId = r.request.sessionId;
      this.bySession.set(r.request.sessionId, v);
    }
    v.request = r.request;
    return r.request;
  }

  private async paymentHeaders(v: Visitor): Promise<Record<string, string>> {
    const r = await this.ensureRequest(v);
    return { 'TorPlus-Payment-Request': `${this.o.apiOrigin}/v1/payment-requests/${r.id}`, 'TorPlus-Session': v.token! };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const seen: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    this.seen.push(seen);
    res.on('finish', () => (seen.status = res.statusCode));
    res.on('close', () => (seen.status ??= res.statusCode));
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith('/v1/')) return this.api(req, res, url.pathname);
    if (url.pathname !== '/file') return json(res, 404, { error: 'not found' });
    return this.content(req, res);
  }

  private async api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const p = this.o.payments;
    try {
      let m: RegExpExecArray | null;
      if ((m = /^\/v1\/payment-requests\/([^/]+)$/.exec(path)) && req.method === 'GET') {
        const r = await p.getRequest(decodeURIComponent(m[1]!));
        return r ? json(res, 200, p.requestJson(r)) : json(res, 404, { error: 'unknown_request', message: 'no such request' });
      }
      if ((m = /^\/v1\/payment-requests\/([^/]+)\/payments$/.exec(path)) && req.method === 'POST') {
        const body = await readJson(req);
        const id = decodeURIComponent(m[1]!);
        const receipt = body.xdr !== undefined ? await p.submitXdr(id, body.xdr) : await p.submitHash(id, body.hash);
        return json(res, 200, receipt);
      }
      if (path === '/v1/tabs' && req.method === 'POST') {
        const body = await readJson(req);
        const ref = typeof body.request_id === 'string' ? body.request_id : typeof body.session === 'string' ? body.session : '';
        return json(res, 200, await p.openTab(ref, String(body.payer)));
      }
      if ((m = /^\/v1\/tabs\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]!);
        if (req.method === 'GET') {
          const t = await p.getTab(id);
          return t ? json(res, 200, t) : json(res, 404, { error: 'unknown_tab', message: 'no such tab' });
        }
        if (req.method === 'POST') {
          const body = await readJson(req);
          return json(res, 200, await p.submitTab(id, body.xdr));
        }
      }
      return json(res, 404, { error: 'not found' });
    } catch (err) {
      if (isPaymentError(err)) return json(res, err.httpStatus, err.toJSON());
      throw err;
    }
  }

  private async content(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const v = await this.visitorOf(req);
    const content = this.o.content;
    const mustPay = (): boolean => v.freeLeft === 0 && v.credit === 0;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (mustPay() || v.request || v.token) Object.assign(headers, await this.paymentHeaders(v));
    if (mustPay() && this.o.honorAcceptPayment !== false && /\bstellar\b/i.test(String(req.headers['accept-payment'] ?? ''))) {
      const r = await this.ensureRequest(v);
      const text = JSON.stringify(this.o.payments.requestJson(r));
      res.writeHead(402, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    let start = 0;
    let end = content.length - 1;
    let status = 200;
    const ranges = this.o.ranges !== false;
    if (ranges) {
      headers['accept-ranges'] = 'bytes';
      headers.etag = this.etag;
      const range = req.headers.range;
      const ifRange = req.headers['if-range'];
      const m = typeof range === 'string' ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
      if (m && (ifRange === undefined || ifRange === this.etag)) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), end);
        if (start > end) {
          res.writeHead(416, { 'content-range': `bytes */${content.length}` });
          res.end();
          return;
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${content.length}`;
      }
    }
    headers['content-length'] = String(end - start + 1);
    res.writeHead(status, headers);
    let sent = 0;
    let throttled = false;
    let offset = start;
    while (offset <= end) {
      if (res.destroyed) return;
      const slice = content.subarray(offset, Math.min(offset + SLICE, end + 1));
      if (this.o.cutOnceAt !== undefined && !this.cutDone && sent + slice.length > this.o.cutOnceAt) {
        this.cutDone = true;
        res.destroy();
        return;
      }
      let charge = true;
      if (throttled && this.o.liftRunning === false) {
        // This bridge never speeds a throttled response up again; its bytes are not charged either.
        await this.wait(v, (slice.length * 1000) / this.o.throttleBytesPerSec, false);
        charge = false;
      } else if (mustPay()) {
        await this.ensureRequest(v);
        if (this.o.cutWhenUnpaid) {
          // Close the connection after what was sent so far (and counted) has gone out.
          if (res.socket) res.socket.end();
          else res.destroy();
          return;
        }
        throttled = true;
        await this.wait(v, (slice.length * 1000) / this.o.throttleBytesPerSec, true);
        if (!mustPay() && this.o.liftRunning !== false) throttled = false;
      }
      // Count: free allowance first, then credit (a throttled slice is free of charge).
      if (charge) {
        let n = slice.length;
        const free = Math.min(v.freeLeft, n);
        v.freeLeft -= free;
        n -= free;
        v.credit -= Math.min(v.credit, n);
      }
      if (!res.write(slice)) await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
      sent += slice.length;
      offset += slice.length;
    }
    res.end();
  }

  /** Waits `ms`, or until a payment credits the visitor when `wakeable`. */
  private wait(v: Visitor, ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        v.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (wakeable) v.wakers.add(done);
    });
  }
}
