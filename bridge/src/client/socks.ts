// HTTP/1.1 requests for the client: through tor's SOCKS5 port (the host name is passed to the proxy
// unresolved, so `.onion` names work), or directly (tests and local tools only; the CLI always uses SOCKS).
//
// Unlike devnet/socks-http.ts this sends SOCKS5 username/password credentials when given: tor's SocksPort
// isolates streams by credentials (IsolateSOCKSAuth is on by default), so one random pair per download
// keeps all of its streams (content, probes, payment API calls) on one circuit of their own, which is the
// visitor the bridge meters. The stream and request plumbing is util/http-stream.ts, shared with devnet.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import {
  abortReason,
  destroyOnAbort,
  openStream,
  parseHttpUrl,
  sendHttpRequest,
  type ParsedHttpUrl,
  type SocksProxy,
} from '../util/http-stream.js';

export { parseHttpUrl, type ParsedHttpUrl, type SocksProxy };

/** How requests leave this process: through a SOCKS5 proxy (tor), or a direct TCP connection. */
export type Transport = { socks: SocksProxy } | { direct: true };

export interface HttpRequestOptions {
  transport: Transport;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Until the response headers have arrived (connect, SOCKS handshake, request). Default 60 s. */
  timeoutMs?: number;
  /** Aborts the request, and later the response body. */
  signal?: AbortSignal;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;

/** A fresh pair of SOCKS credentials: streams that use it share a circuit no one else's streams use. */
export function isolationCredentials(): { username: string; password: string } {
  return { username: `torplus-${randomBytes(6).toString('hex')}`, password: randomBytes(6).toString('hex') };
}

/** Opens a TCP stream to host:port, through the SOCKS proxy if one is configured. */
async function connect(target: ParsedHttpUrl, transport: Transport, timeoutMs: number, signal: AbortSignal): Promise<net.Socket> {
  const proxy = 'socks' in transport ? transport.socks : undefined;
  try {
    return await openStream(target, proxy, { timeoutMs, signal });
  } catch (err) {
    if (signal.aborted) throw abortReason(signal);
    const where = proxy ? `through the SOCKS5 proxy ${proxy.host}:${proxy.port}` : 'directly';
    throw new Error(`cannot connect to ${target.hostHeader} ${where}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Sends one HTTP/1.1 request (Connection: close) and resolves once the response headers have arrived; the body
 * streams from the returned response. Destroy it, or read it to the end, when done.
 */
export async function httpRequest(url: string, opts: HttpRequestOptions): Promise<IncomingMessage> {
  const target = parseHttpUrl(url);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const ac = new AbortController();
  let stage = 'connecting';
  const timer = setTimeout(() => ac.abort(new Error(`${opts.method ?? 'GET'} ${url}: no response within ${timeoutMs} ms (${stage})`)), timeoutMs);
  const onUserAbort = (): void => ac.abort(opts.signal ? abortReason(opts.signal) : new Error('aborted'));
  if (opts.signal?.aborted) onUserAbort();
  else opts.signal?.addEventListener('abort', onUserAbort, { once: true });
  let socket: net.Socket | undefined;
  try {
    if (ac.signal.aborted) throw abortReason(ac.signal);
    socket = await connect(target, opts.transport, timeoutMs, ac.signal);
    stage = 'waiting for the response';
    const res = await sendHttpRequest(socket, target, opts, ac.signal);
    // From here on only the caller's signal applies.
    destroyOnAbort(res, opts.signal);
    return res;
  } catch (err) {
    socket?.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onUserAbort);
  }
}

/** Reads a (small) response body to the end: at most `maxBytes`, within `timeoutMs`. */
export async function readBody(res: IncomingMessage, maxBytes = 256 * 1024, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const timer = setTimeout(() => {
      res.destroy();
      reject(new Error(`the response body did not arrive within ${timeoutMs} ms`));
    }, timeoutMs);
    res.on('data', (c: Buffer) => {
      n += c.length;
      if (n > maxBytes) {
        clearTimeout(timer);
        res.destroy();
        reject(new Error(`the response body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    res.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.complete) reject(new Error('the connection closed before the response body was complete'));
    });
  });
}
