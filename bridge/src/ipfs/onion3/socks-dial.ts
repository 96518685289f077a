// Opens a stream to `<address>.onion:<port>` through tor's SOCKS5 port. The host name goes to tor
// as a name (SOCKS5 address type 3): nothing is resolved locally.
import net, { type Socket } from 'node:net';
import { AbortError, TimeoutError } from '@libp2p/interface';
import { SocksClient } from 'socks';
import { OnionUnreachableError, SocksProxyError } from './errors.js';

/** Where tor's SocksPort is. `username`/`password` select a circuit under tor's IsolateSOCKSAuth. */
export interface SocksEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

export interface SocksDialOptions {
  /** For the whole dial: TCP connect to the SOCKS port, handshake, and tor reaching the onion. */
  timeoutMs: number;
  signal: AbortSignal;
}

/** Resolves with a connected socket, paused; `socks` resumes it on its own once the caller listens. */
export async function socksDial(
  proxy: SocksEndpoint,
  target: { host: string; port: number },
  options: SocksDialOptions,
): Promise<Socket> {
  options.signal.throwIfAborted();
  const where = `${target.host}:${target.port}`;
  const socksAt = `${proxy.host}:${proxy.port}`;
  const socket = net.connect({ host: proxy.host, port: proxy.port, noDelay: true, keepAlive: true });
  // Why we destroyed the socket ourselves, if we did: reported instead of the `socks` error it causes.
  let cause: Error | undefined;
  const stop = (err: Error): void => {
    cause ??= err;
    socket.destroy();
  };
  const onAbort = (): void => stop(new AbortError(`onion3: dial to ${where} aborted`));
  const timer = setTimeout(
    () => stop(new TimeoutError(`onion3: no connection to ${where} within ${options.timeoutMs} ms (dialTimeoutMs); the onion may be offline or tor still bootstrapping`)),
    options.timeoutMs,
  );
  options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        done();
        reject(cause ?? new SocksProxyError(`onion3: cannot reach tor's SOCKS port at ${socksAt} (${err.message}): is tor running with this SocksPort?`));
      };
      // destroy() without an error (abort, timeout) emits only 'close'.
      const onClose = (): void => {
        done();
        reject(cause ?? new SocksProxyError(`onion3: connection to tor's SOCKS port at ${socksAt} closed`));
      };
      const onConnect = (): void => {
        done();
        resolve();
      };
      const done = (): void => {
        socket.off('error', onError);
        socket.off('close', onClose);
        socket.off('connect', onConnect);
      };
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once('connect', onConnect);
    });
    try {
      await SocksClient.createConnection({
        proxy: {
          host: proxy.host,
          port: proxy.port,
          type: 5,
          ...(proxy.username != null ? { userId: proxy.username, password: proxy.password ?? '' } : {}),
        },
        command: 'connect',
        destination: { host: target.host, port: target.port },
        // Our own timer comes first and says more; this one is only a backstop.
        timeout: options.timeoutMs + 1_000,
        existing_socket: socket,
      });
    } catch (err) {
      throw cause ?? describeSocksError(err as Error, where, socksAt);
    }
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}

function describeSocksError(err: Error, where: string, socksAt: string): Error {
  const message = err.message;
  const rejected = /^Socks5 proxy rejected connection - (.*)$/.exec(message);
  if (rejected != null) {
    const reply = rejected[1] === 'undefined' ? undefined : rejected[1];
    return new OnionUnreachableError(
      `onion3: tor could not connect to ${where} (SOCKS5 reply: ${reply ?? 'an extended error code'}): ` +
        'the onion service is offline, unknown, or its descriptor is not published yet; retry later',
      reply,
    );
  }
  if (message === 'Proxy connection timed out') {
    return new TimeoutError(`onion3: no connection to ${where} through ${socksAt} in time (dialTimeoutMs)`);
  }
  if (message === 'Socket closed') {
    return new SocksProxyError(`onion3: ${socksAt} closed the connection during the SOCKS5 handshake for ${where}: is it tor's SocksPort?`);
  }
  if (/authentication/i.test(message)) {
    return new SocksProxyError(`onion3: tor's SOCKS port at ${socksAt} refused the SOCKS5 authentication (${message})`);
  }
  if (/Socks5|handshake/i.test(message)) {
    return new SocksProxyError(`onion3: ${socksAt} did not answer like a SOCKS5 proxy (${message}): is it tor's SocksPort?`);
  }
  return new SocksProxyError(`onion3: SOCKS5 connection to ${where} through ${socksAt} failed: ${message}`);
}
