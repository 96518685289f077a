// Erasable TypeScript only: the proxy workers load the helpers below straight from source under jest.
import type { IncomingMessage } from 'node:http';
import type { PaymentRequest } from '../../payments/types.js';
import type { Visitor } from '../visitor.js';
import type { Paywall } from '../paywall/paywall.js';
import type { Meter } from './meter.js';
import type { RequestMeter } from './pacer.js';

export const SESSION_COOKIE = 'torplus_session';

export interface VisitorMeterOptions {
  meter: Meter;
  /**
   * Where the visitor fetches the request: on the onion, its API port; else the plain API port, on
   * the host the visitor asked for (`host` is the request's Host header). With proxy workers this
   * runs in the primary, for each Host header a worker reports.
   */
  paymentUrl: (visitor: Visitor, host: string | undefined, requestId: string) => string;
  /** The request as JSON, for a 402 body. */
  requestJson: (request: PaymentRequest) => unknown;
  /** PAYWALL=page: a throttled visitor's navigations get the pay page (402, HTML) instead of the site. */
  paywall?: Paywall;
}

/**
 * Binds a request to its visitor's account: a Tor circuit on the onion, the client address on the
 * plain port, or a paid session when the request presents its token (header or cookie). This is the
 * single-process gateway's meter; with proxy workers, each worker has a RemoteVisitorMeter and the
 * primary a MeterHost around the same Meter.
 */
export function createVisitorMeter(o: VisitorMeterOptions): (req: IncomingMessage, visitor: Visitor) => RequestMeter {
  const { meter } = o;
  return (req, visitor) => {
    const token = sessionTokenOf(req);
    let a = meter.account(visitorKeyOf(req, visitor), token);
    const payHeaders = (): string[] | undefined => {
      if (!meter.mustPay(a)) return undefined;
      const r = meter.request(a);
      if (!r) {
        meter.ensureRequest(a);
        return undefined;
      }
      return paymentHeaders(o.paymentUrl(visitor, req.headers.host, r.id), a.sessionToken, isTls(req));
    };
    return {
      // A token not known yet is looked up first: its session's credit, not the circuit's allowance.
      pending(ready) {
        const lookup = meter.prepare(token);
        if (!lookup) return false;
        void lookup.then(() => {
          a = meter.account(visitorKeyOf(req, visitor), token);
          ready();
        });
        return true;
      },
      headers: payHeaders,
      paymentRequired() {
        if (wants402(req)) {
          if (!meter.mustPay(a)) return undefined;
          const r = meter.request(a);
          if (!r) {
            meter.ensureRequest(a);
            return PAYMENT_PENDING;
          }
          return paymentRequiredAnswer(payHeaders() ?? [], JSON.stringify(o.requestJson(r)));
        }
        // The grace period comes first: only a throttled visitor's navigation gets the pay page.
        if (!a.throttled || !o.paywall?.wants(req)) return undefined;
        const r = meter.request(a);
        if (!r) {
          meter.ensureRequest(a);
          return o.paywall.preparing(req, []);
        }
        return o.paywall.page(req, o.requestJson(r), payHeaders() ?? []);
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

/** The meter's key for the request's visitor: its Tor circuit, or its address on the plain port. */
export function visitorKeyOf(req: IncomingMessage, visitor: Visitor): string {
  return visitor.kind === 'circuit' ? `circuit:${visitor.circuitId}` : `ip:${req.socket.remoteAddress ?? 'unknown'}`;
}

/** The visitor behind a key made by visitorKeyOf (for paymentUrl in the primary). */
export function visitorOfKey(key: string): Visitor {
  return key.startsWith('circuit:') ? { kind: 'circuit', circuitId: Number(key.slice(8)) } : { kind: 'direct' };
}

/**
 * The response headers that point at a payment request, and hand out the session token: as a header
 * for clients, and as a cookie for browsers, so a paid credit follows Tor Browser to its next circuit.
 * The cookie is `Secure` when the visitor came over TLS (a .onion over plain HTTP is a secure context
 * to Tor Browser already, and a `Secure` cookie would not be sent back there by other browsers).
 */
export function paymentHeaders(url: string, sessionToken: string | undefined, secure = false): string[] {
  const h = ['TorPlus-Payment-Request', url, 'Link', `<${url}>; rel="payment"`];
  if (sessionToken) {
    h.push('TorPlus-Session', sessionToken, 'Set-Cookie', `${SESSION_COOKIE}=${sessionToken}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  }
  return h;
}

/** The visitor's connection is TLS (HTTPS_PORT, or the onion's port 443). */
export function isTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** The 402 answer: the payment headers and the request as JSON. */
export function paymentRequiredAnswer(flat: string[], body: string): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  for (let i = 0; i < flat.length; i += 2) headers[flat[i]!] = flat[i + 1]!;
  return { headers, body };
}

/** The 402 answer while the payment request is still being made. */
export const PAYMENT_PENDING: { headers: Record<string, string>; body: string } = {
  headers: { 'content-type': 'application/json', 'retry-after': '1' },
  body: JSON.stringify({ error: 'payment_request_pending', message: 'a payment request is being prepared; retry in a second' }),
};

/** The visitor asked for a 402 rather than a throttled body. */
export function wants402(req: IncomingMessage): boolean {
  const v = req.headers['accept-payment'];
  return typeof v === 'string' && /\bstellar\b/i.test(v);
}

export function sessionTokenOf(req: IncomingMessage): string | undefined {
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
