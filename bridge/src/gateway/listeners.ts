import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';

/** Timeouts that keep slow or idle visitors from holding sockets forever (slowloris). */
export function hardenServer(server: Server): Server {
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // long downloads (and throttled ones) are legitimate
  return server;
}

export function createHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  return hardenServer(createServer({ noDelay: true }, handler));
}

export async function listen(server: NetServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Stops accepting, lets in-flight requests finish for `graceMs`, then cuts what is left. */
export async function closeGracefully(server: NetServer & Partial<Pick<Server, 'closeIdleConnections' | 'closeAllConnections'>>, graceMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections?.();
  const timer = setTimeout(() => server.closeAllConnections?.(), graceMs);
  await closed;
  clearTimeout(timer);
}
