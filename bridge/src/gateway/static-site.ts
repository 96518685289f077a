import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import serveStatic from 'serve-static';

/**
 * The embedded web server used when no UPSTREAM_URL is set (running without Docker). It listens
 * on an ephemeral loopback port and the proxy forwards to it exactly as it would to nginx, so
 * metering and throttling see one path.
 */
export class StaticSite {
  private server: Server | undefined;

  constructor(private readonly root: string) {}

  async start(): Promise<URL> {
    const serve = serveStatic(this.root, { index: ['index.html'], dotfiles: 'ignore', fallthrough: true });
    const server = createServer((req, res) => {
      serve(req, res, () => {
        const body = 'Not found\n';
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
