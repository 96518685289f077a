import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { createForwarder, type Forward } from './forwarder.js';
import { createServer as createHttpsServer } from 'node:https';
import { createHttpServer, hardenServer } from './listeners.js';
import { tlsServerOptions, type TlsSource } from './tls-source.js';
import { createOnionListener } from './onion-listener.js';
import { tunnelUpgrade } from './upgrade.js';
import { visitorOf, type Visitor } from './visitor.js';
import type { RequestMeter } from './meter/pacer.js';

// This file, and everything it imports, also runs in the proxy worker processes, straight from the
// TypeScript source under jest (Node's type stripping): erasable TypeScript only, no parameter
// properties or enums.

/** A path prefix served by one of the bridge's own loopback servers instead of the site. */
export interface Route {
  prefix: string;
  upstream: URL;
  /**
   * false: neither metered nor ever answered with a 402 (the pay page's own answers, which a throttled
   * visitor must reach at once). Default true: the bytes count like the site's.
   */
  metered?: boolean;
}

export interface ProxyServersOptions {
  upstream: URL;
  /**
   * The bridge's own services behind the same ports, by path prefix: /ipfs/ (the IPFS gateway) and
   * /.well-known/acme-challenge/ (ACME HTTP-01). Their bytes are metered like the site's.
   */
  routes?: Route[];
  /** The onion address once known, for the Onion-Location header on the plain port. */
  onionAddress: () => string | undefined;
  onUpstreamError: (err: Error) => void;
  onUpgradeError: (err: Error) => void;
  /** A connection to the onion listener was closed for a bad or missing PROXY line. */
  onReject: (reason: string) => void;
  /** How long a new onion connection may take to send its PROXY line. */
  headerTimeoutMs?: number;
  /** Sees every request with its visitor before it is forwarded (metering hooks in here). */
  onRequest?: (visitor: Visitor, req: IncomingMessage) => void;
  /** Meters each request's visitor (payments). */
  meter?: (req: IncomingMessage, visitor: Visitor) => RequestMeter;
  /** HTTPS: the same proxy behind TLS, on HTTPS_PORT and behind the onion's port 443. */
  tls?: TlsSource;
}

export interface ProxyServers {
  /** The plain HTTP port's server (not listening yet). */
  plain: Server;
  /** The loopback listener tor's HiddenServicePort points at (not listening yet). */
  onionTcp: NetServer;
  /** The HTTP server behind onionTcp; it never listens itself. */
  onionHttp: Server;
  /** Drops the upstream connection pools. */
  closeForwarders(): void;
  /** With `tls`: HTTPS_PORT's server, and the onion's port 443 listener with its HTTPS server. */
  https?: { plain: Server; onionTcp: NetServer; onionHttps: Server };
}

/**
 * The proxy's servers, wired to the forwarders: the same code in the single-process gateway and in
 * each proxy worker process.
 */
export function createProxyServers(o: ProxyServersOptions): ProxyServers {
  const { upstream, onUpstreamError } = o;
  const visitorMeter = o.meter;
  const meter = visitorMeter ? (req: IncomingMessage) => visitorMeter(req, visitorOf(req.socket)) : undefined;
  const onionLocation = (req: IncomingMessage) => {
    const onion = o.onionAddress();
    return onion ? ['Onion-Location', `http://${onion}${req.url ?? '/'}`] : undefined;
  };
  const forwarders = [createForwarder({ upstream, onUpstreamError, meter }), createForwarder({ upstream, onUpstreamError, meter, responseHeaders: onionLocation })];
  const [onionForward, plainForward] = forwarders.map((f) => f.forward) as [Forward, Forward];
  const routes = o.routes ?? [];
  // Each route gets its own pools; only the path prefix decides, so the site keeps every other path.
  const route = (site: Forward, headers?: typeof onionLocation): Forward => {
    if (routes.length === 0) return site;
    const table = routes.map((r) => {
      const f = createForwarder({ upstream: r.upstream, onUpstreamError, meter: r.metered === false ? undefined : meter, responseHeaders: headers });
      forwarders.push(f);
      return { prefix: r.prefix, forward: f.forward };
    });
    return (req, res) => {
      const url = req.url ?? '';
      for (const r of table) if (url.startsWith(r.prefix)) return r.forward(req, res);
      site(req, res);
    };
  };
  const observe = o.onRequest;
  const withVisitor = (forward: Forward) =>
    observe ? (req: IncomingMessage, res: ServerResponse) => (observe(visitorOf(req.socket), req), forward(req, res)) : forward;

  const onionHttp = createHttpServer(withVisitor(route(onionForward)));
  onionHttp.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, o.onUpgradeError));
  const onionTcp = createOnionListener({
    onConnection: (socket) => onionHttp.emit('connection', socket),
    headerTimeoutMs: o.headerTimeoutMs,
    onReject: o.onReject,
  });
  const plain = createHttpServer(withVisitor(route(plainForward, onionLocation)));
  plain.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, o.onUpgradeError));
  let https: ProxyServers['https'];
  if (o.tls) {
    const options = tlsServerOptions(o.tls);
    const plainHttps = hardenServer(createHttpsServer({ ...options, noDelay: true }, withVisitor(route(plainForward, onionLocation))));
    plainHttps.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, o.onUpgradeError));
    const onionHttps = hardenServer(createHttpsServer({ ...options, noDelay: true }, withVisitor(route(onionForward))));
    onionHttps.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, o.onUpgradeError));
    // Port 443 of the onion: the PROXY line first, as on port 80, then the TLS handshake.
    const onionTlsTcp = createOnionListener({
      onConnection: (socket) => onionHttps.emit('connection', socket),
      tls: true,
      headerTimeoutMs: o.headerTimeoutMs,
      onReject: o.onReject,
    });
    https = { plain: plainHttps, onionTcp: onionTlsTcp, onionHttps };
  }
  return {
    https,
    plain,
    onionTcp,
    onionHttp,
    closeForwarders: () => forwarders.forEach((f) => f.close()),
  };
}
