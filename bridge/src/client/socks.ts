// HTTP/1.1 requests for the client: through tor's SOCKS5 port (the host name is passed to the proxy
// unresolved, so `.onion` names work), or directly (tests and local tools only; the CLI always uses SOCKS).
//
// Unlike devnet/socks-http.ts this sends SOCKS5 username/password credentials when given: tor's SocksPort
// isolates streams by credentials (IsolateSOCKSAuth is on by default), so one random pair per download
// keeps all of its streams (content, probes, payment API calls) on one circuit of their own, which is the
// visitor the bridge meters.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { SocksClient } from 'socks';

export interface SocksProxy {
  host: string;
  port: number;
  /** SOCKS5 username/password: tor uses them for stream isolation only (any value is accepted). */
  username?: string;
  password?: string;
}

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

export interface ParsedHttpUrl {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
}

export function parseHttpUrl(url: string): ParsedHttpUrl {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`only http:// URLs are supported (got ${u.protocol})`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port ? Number(u.port) : 80, path: `${u.pathname}${u.search}` || '/', hostHeader: u.host };
}

function reasonOf(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(String(r ?? 'aborted'));
}

/** Opens a TCP stream to host:port, through the SOCKS proxy if one is configured. */
async function openStream(target: ParsedHttpUrl, transport: Transport, timeoutMs: number, signal: AbortSignal): Promise<net.Socket> {
  const proxy = 'socks' in transport ? transport.socks : undefined;
  const socket = proxy ? net.connect({ host: proxy.host, port: proxy.port }) : net.connect({ host: target.host, port: target.port });
  const onAbort = (): void => {
    socket.destroy(reasonOf(signal));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
    });
    if (proxy) {
      await SocksClient.createConnection({
        proxy: {
          host: proxy.host,
          port: proxy.port,
          type: 5,
          ...(proxy.username !== undefined ? { userId: proxy.username, password: proxy.password ?? '' } : {}),
        },
        command: 'connect',
        destination: { host: target.host, port: target.port },
        timeout: timeoutMs + 1_000,
        existing_socket: socket,
      });
    }
    return socket;
  } catch (err) {
    socket.destroy();
    if (signal.aborted) throw reasonOf(signal);
    const where = proxy ? `through the SOCKS5 proxy ${proxy.host}:${proxy.port}` : 'directly';
    throw new Error(`cannot connect to ${target.hostHeader} ${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    signal.removeEventListener('abort', onAbort);
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
  const onUserAbort = (): void => ac.abort(opts.signal ? reasonOf(opts.signal) : new Error('aborted'));
  if (opts.signal?.aborted) onUserAbort();
  else opts.signal?.addEventListener('abort', onUserAbort, { once: true });
  let socket: net.Socket | undefined;
  try {
    if (ac.signal.aborted) throw reasonOf(ac.signal);
    socket = await openStream(target, opts.transport, timeoutMs, ac.signal);
    stage = 'waiting for the response';
    const stream = socket;
    const headers: Record<string, string> = { Host: target.hostHeader, Connection: 'close', ...opts.headers };
    if (opts.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.request({
        method: opts.method ?? 'GET',
        host: target.host,
        port: target.port,
        path: target.path,
        headers,
        createConnection: () => stream,
        signal: ac.signal,
      });
      req.once('response', resolve);
      req.once('error', (err) => reject(ac.signal.aborted ? reasonOf(ac.signal) : err));
      req.end(opts.body);
    });
    // From here on only the caller's signal applies.
    const user = opts.signal;
    if (user) {
      const onAbort = (): void => {
        res.destroy(reasonOf(user));
      };
      if (user.aborted) onAbort();
      else {
        user.addEventListener('abort', onAbort, { once: true });
        res.once('close', () => user.removeEventListener('abort', onAbort));
      }
    }
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
