import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { filterRawHeaders } from './headers.js';

export interface ForwarderOptions {
  upstream: URL;
  /** Extra response headers, as a flat [name, value, …] list, for example Onion-Location. */
  responseHeaders?: (req: IncomingMessage) => string[] | undefined;
  /** Called with every upstream failure; the visitor gets a 502 when nothing was sent yet. */
  onUpstreamError?: (err: Error) => void;
  maxSockets?: number;
}

export type Forward = (req: IncomingMessage, res: ServerResponse) => void;

const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The proxy's hot path: plain node:http with a keep-alive pool. Bodies stream both ways with
 * backpressure (pipe), nothing is buffered whole, and a visitor who leaves aborts the upstream
 * request. The field notes measured express and http-proxy here as too costly.
 */
export function createForwarder(opts: ForwarderOptions): { forward: Forward; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256, maxFreeSockets: 64, scheduling: 'lifo' });
  const { hostname, port } = opts.upstream;
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;

  function send(req: IncomingMessage, res: ServerResponse, attempt: number): void {
    const upReq = request({
      agent,
      host,
      port: port || 80,
      method: req.method,
      path: req.url,
      headers: filterRawHeaders(req.rawHeaders, 'request') as unknown as Record<string, string>,
      setHost: false,
    });
    const onClientGone = () => {
      if (!res.writableFinished) upReq.destroy();
    };
    res.once('close', onClientGone);

    upReq.once('response', (upRes) => {
      const headers = filterRawHeaders(upRes.rawHeaders, 'response');
      const extra = opts.responseHeaders?.(req);
      if (extra) headers.push(...extra);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
      upRes.pipe(res);
      // A response cut short by the upstream must reach the visitor as a cut, not as a
      // complete-looking body: destroy the visitor's connection.
      upRes.once('aborted', () => res.destroy());
      upRes.once('error', () => res.destroy());
    });

    upReq.once('error', (err: NodeJS.ErrnoException) => {
      res.off('close', onClientGone);
      if (res.destroyed) return;
      // A pooled connection the upstream closed while idle: retry a safe request once.
      if (attempt === 0 && upReq.reusedSocket && err.code === 'ECONNRESET' && RETRYABLE.has(req.method ?? '') && !res.headersSent) {
        return send(req, res, 1);
      }
      opts.onUpstreamError?.(err);
      if (!res.headersSent) {
        const body = 'Bad gateway: the website behind this bridge is not answering.\n';
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'retry-after': '5' });
        res.end(body);
      } else {
        res.destroy();
      }
    });

    if (attempt === 0) req.pipe(upReq);
    else upReq.end();
  }

  return {
    forward: (req, res) => send(req, res, 0),
    close: () => agent.destroy(),
  };
}
