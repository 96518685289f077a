// HTTP/1.1 over a SOCKS5 proxy (tor's SocksPort), with the host name passed to the proxy unresolved, so that
// `.onion` names work. Used by the tests, the demo and the benchmarks; not on the bridge's hot path. The stream
// and request plumbing is util/http-stream.ts (shared with the client); this adds timings and stage-wise errors.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { abortReason, destroyOnAbort, openStream, parseHttpUrl, sendHttpRequest } from '../util/http-stream.js';

export interface SocksRequestOptions {
  /** tor's SocksPort. */
  socksPort: number;
  /** Default 127.0.0.1. */
  socksHost?: string;
  /**
   * socksGet: the whole exchange (SOCKS handshake, request, headers and body). socksRequest: until the response
   * headers have arrived; the body is then the caller's business. Default 30 s.
   */
  timeoutMs?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** socksRequest only; default GET. */
  method?: string;
  /** socksRequest only: a request body, sent with Content-Length. */
  body?: string | Buffer;
  /**
   * Sent as the SOCKS5 username: tor puts streams with different usernames on different circuits (for an onion,
   * a new rendezvous circuit, with introduction points picked anew). Default: none.
   */
  isolation?: string;
}

export interface SocksResponse {
  /** The response; its body is still to be read. Destroy it (or read it to the end) when done. */
  res: IncomingMessage;
  /** Milliseconds from the call until the SOCKS proxy reported the stream open. */
  connectMs: number;
  /** Milliseconds from the call until the first byte of the HTTP response. */
  firstByteMs: number;
  /** performance.now() at the call, to measure later phases against. */
  startedAt: number;
}

export interface FetchResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds from the call until the first byte of the HTTP response. */
  firstByteMs: number;
  /** Milliseconds from the call until the end of the body. */
  totalMs: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** An AbortSignal that fires on the caller's signal or after `ms`, with an Error that says what timed out. */
function deadline(ms: number, signal: AbortSignal | undefined, what: () => string): { signal: AbortSignal; clear: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`${what()}: timed out after ${ms} ms`)), ms);
  const onAbort = (): void => {
    const reason: unknown = signal?.reason;
    ac.abort(reason instanceof Error ? reason : new Error(`${what()}: aborted`));
  };
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Open a SOCKS5 stream to the URL's host (name passed unresolved) and send one HTTP/1.1 request on it.
 * Resolves with the response once its headers have arrived; the body streams from `res`. The request uses
 * `Connection: close`, so the stream ends with the response.
 */
export async function socksRequest(url: string, opts: SocksRequestOptions): Promise<SocksResponse> {
  const startedAt = performance.now();
  const target = parseHttpUrl(url);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let stage = 'connecting to the SOCKS proxy';
  const dl = deadline(timeoutMs, opts.signal, () => `socksRequest ${url} (${stage})`);
  const signal = dl.signal;
  let socket: net.Socket | undefined;
  try {
    if (signal.aborted) throw abortReason(signal);
    try {
      const proxy = { host: opts.socksHost ?? '127.0.0.1', port: opts.socksPort };
      const auth = opts.isolation !== undefined ? { username: opts.isolation, password: 'x' } : {};
      socket = await openStream(target, { ...proxy, ...auth }, {
        timeoutMs,
        signal,
        onConnected: () => {
          stage = 'SOCKS5 handshake';
        },
      });
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      throw new Error(`socksRequest ${url} (${stage}): ${(err as Error).message}`, { cause: err });
    }
    const connectMs = performance.now() - startedAt;
    stage = 'waiting for the HTTP response';
    let firstByteAt = 0;
    socket.once('data', () => {
      firstByteAt = performance.now();
    });
    const res = await sendHttpRequest(socket, target, opts, signal);
    const firstByteMs = (firstByteAt || performance.now()) - startedAt;
    // From here on only the caller's own signal applies (our timeout covered the headers).
    destroyOnAbort(res, opts.signal);
    return { res, connectMs, firstByteMs, startedAt };
  } catch (err) {
    socket?.destroy();
    throw err;
  } finally {
    dl.clear();
  }
}

/** GET `url` through the SOCKS5 proxy and read the whole body; `timeoutMs` covers the whole exchange. */
export async function socksGet(
  url: string,
  opts: Pick<SocksRequestOptions, 'socksPort' | 'socksHost' | 'timeoutMs' | 'headers' | 'signal' | 'isolation'>,
): Promise<FetchResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let stage = 'request';
  const dl = deadline(timeoutMs, opts.signal, () => `socksGet ${url} (${stage})`);
  try {
    const { res, firstByteMs, startedAt } = await socksRequest(url, {
      socksPort: opts.socksPort,
      ...(opts.socksHost !== undefined ? { socksHost: opts.socksHost } : {}),
      ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
      ...(opts.isolation !== undefined ? { isolation: opts.isolation } : {}),
      // The outer deadline is the limit; give the inner one slack so that the outer error message wins.
      timeoutMs: timeoutMs + 1_000,
      signal: dl.signal,
    });
    stage = 'reading the body';
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onAbort = (): void => {
        res.destroy();
        reject(abortReason(dl.signal));
      };
      if (dl.signal.aborted) return onAbort();
      dl.signal.addEventListener('abort', onAbort, { once: true });
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        dl.signal.removeEventListener('abort', onAbort);
        resolve(Buffer.concat(chunks));
      });
      res.once('error', (err) => {
        dl.signal.removeEventListener('abort', onAbort);
        reject(dl.signal.aborted ? abortReason(dl.signal) : err);
      });
      res.once('aborted', () => reject(new Error(`socksGet ${url}: connection closed before the body was complete`)));
    });
    return {
      status: res.statusCode ?? 0,
      headers: res.headers,
      body,
      firstByteMs,
      totalMs: performance.now() - startedAt,
    };
  } finally {
    dl.clear();
  }
}
