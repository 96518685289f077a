// The pieces of one HTTP/1.1 request on a stream of its own, through a SOCKS5 proxy (tor's SocksPort; the host
// name is passed to the proxy unresolved, so `.onion` names work) or directly. Shared by the client
// (client/socks.ts) and the dev tools (devnet/socks-http.ts), which add their own deadlines and error messages.
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

export interface ParsedHttpUrl {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
}

export interface HttpRequestParts {
  /** Default GET. */
  method?: string;
  /** Added to Host and `Connection: close` (and Content-Length when there is a body). */
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export function parseHttpUrl(url: string): ParsedHttpUrl {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`only http:// URLs are supported (got ${u.protocol})`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port ? Number(u.port) : 80, path: `${u.pathname}${u.search}` || '/', hostHeader: u.host };
}

/** The signal's reason as an Error. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(String(r ?? 'aborted'));
}

/**
 * Opens a TCP stream to target's host:port: through the SOCKS5 proxy (CONNECT, with the proxy's credentials if
 * it has any) when one is given, else directly. It is our own TCP connection, so that `signal` can destroy it at
 * any stage; `onConnected` runs once the TCP connection (to the proxy) is up, before the SOCKS handshake.
 * `timeoutMs` only keeps the socks package's own 30 s default out of the way: the caller's deadline (on
 * `signal`) is the real limit. On failure the socket is destroyed and the error rethrown as it came.
 */
export async function openStream(
  target: { host: string; port: number },
  proxy: SocksProxy | undefined,
  opts: { timeoutMs: number; signal: AbortSignal; onConnected?: () => void },
): Promise<net.Socket> {
  const { signal } = opts;
  const socket = proxy ? net.connect({ host: proxy.host, port: proxy.port }) : net.connect({ host: target.host, port: target.port });
  const onAbort = (): void => {
    socket.destroy(abortReason(signal));
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
    opts.onConnected?.();
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
        timeout: opts.timeoutMs + 1_000,
        existing_socket: socket,
      });
    }
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Sends one HTTP/1.1 request (`Connection: close`) on `stream` and resolves once the response headers have
 * arrived; the body streams from the response. `signal` aborts it (rejecting with the signal's reason).
 */
export async function sendHttpRequest(
  stream: net.Socket,
  target: ParsedHttpUrl,
  request: HttpRequestParts,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const headers: Record<string, string> = { Host: target.hostHeader, Connection: 'close', ...request.headers };
  if (request.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(request.body));
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = http.request({
      method: request.method ?? 'GET',
      host: target.host,
      port: target.port,
      path: target.path,
      headers,
      // No agent: with `agent: false` node would make a fresh Agent that ignores createConnection and
      // resolves the host itself.
      createConnection: () => stream,
      signal,
    });
    req.once('response', resolve);
    req.once('error', (err) => reject(signal.aborted ? abortReason(signal) : err));
    req.end(request.body);
  });
}

/** Lets the caller's `signal` (if any) destroy the response, body included, until it closes. */
export function destroyOnAbort(res: IncomingMessage, signal: AbortSignal | undefined): void {
  if (!signal) return;
  const onAbort = (): void => {
    res.destroy(abortReason(signal));
  };
  if (signal.aborted) onAbort();
  else {
    signal.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => signal.removeEventListener('abort', onAbort));
  }
}
