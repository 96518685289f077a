import type { IncomingMessage } from 'node:http';
import type { PaymentRequest } from '../../payments/types.js';
import type { Visitor } from '../visitor.js';
import type { Meter } from './meter.js';
import type { RequestMeter } from './pacer.js';

export const SESSION_COOKIE = 'torplus_session';

export interface VisitorMeterOptions {
  meter: Meter;
  /** Where the visitor fetches the request: on the onion, its API port; else the plain API port. */
  paymentUrl: (visitor: Visitor, req: IncomingMessage, requestId: string) => string;
  /** The request as JSON, for a 402 body. */
  requestJson: (request: PaymentRequest) => unknown;
}

/**
 * Binds a request to its visitor's account: a Tor circuit on the onion, the client address on the
 * plain port, or a paid session when the request presents its token (header or cookie).
 */
export function createVisitorMeter(o: VisitorMeterOptions): (req: IncomingMessage, visitor: Visitor) => RequestMeter {
  const { meter } = o;
  return (req, visitor) => {
    const key = visitor.kind === 'circuit' ? `circuit:${visitor.circuitId}` : `ip:${req.socket.remoteAddress ?? 'unknown'}`;
    const a = meter.account(key, sessionTokenOf(req));
    const payHeaders = (): string[] | undefined => {
      if (!meter.mustPay(a)) return undefined;
      const r = meter.request(a);
      if (!r) {
        meter.ensureRequest(a);
        return undefined;
      }
      const url = o.paymentUrl(visitor, req, r.id);
      const h = ['TorPlus-Payment-Request', url, 'Link', `<${url}>; rel="payment"`];
      if (a.sessionToken) {
        h.push('TorPlus-Session', a.sessionToken, 'Set-Cookie', `${SESSION_COOKIE}=${a.sessionToken}; Path=/; HttpOnly; SameSite=Lax`);
      }
      return h;
    };
    return {
      headers: payHeaders,
      paymentRequired() {
        if (!wants402(req) || !meter.mustPay(a)) return undefined;
        const r = meter.request(a);
        if (!r) {
          meter.ensureRequest(a);
          const body = JSON.stringify({ error: 'payment_request_pending', message: 'a payment request is being prepared; retry in a second' });
          return { headers: { 'content-type': 'application/json', 'retry-after': '1' }, body };
        }
        const flat = payHeaders() ?? [];
        const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
        for (let i = 0; i < flat.length; i += 2) headers[flat[i]!] = flat[i + 1]!;
        return { headers, body: JSON.stringify(o.requestJson(r)) };
      },
      throttled: () => a.throttled,
      count: (n) => meter.record(a, n),
      reserve: (n) => {
        meter.record(a, n);
        return a.bucket ? a.bucket.reserve(n) : 0;
      },
      onRelease: (wake) => meter.onRelease(a, wake),
    };
  };
}

function wants402(req: IncomingMessage): boolean {
  const v = req.headers['accept-payment'];
  return typeof v === 'string' && /\bstellar\b/i.test(v);
}

function sessionTokenOf(req: IncomingMessage): string | undefined {
  const h = req.headers['torplus-session'];
  if (typeof h === 'string' && h.length > 0) return h;
  const cookie = req.headers.cookie;
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=');
  }
  return undefined;
}
