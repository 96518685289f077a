import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { createForwarder } from './forwarder.js';
import { closeGracefully, createHttpServer, listen } from './listeners.js';
import { createOnionListener } from './onion-listener.js';
import { StaticSite } from './static-site.js';
import { tunnelUpgrade } from './upgrade.js';
import { probeUpstream } from './upstream-probe.js';
import { visitorOf, type Visitor } from './visitor.js';

export interface GatewayOptions {
  /** The web server to front; undefined serves `wwwDir` with the embedded static server. */
  upstream: URL | undefined;
  wwwDir: string;
  listenHost: string;
  httpPort: number;
  /** The onion address once known, for the Onion-Location header on the plain port. */
  onionAddress: () => string | undefined;
  log: Logger;
  /** How long in-flight requests may finish on stop. */
  drainMs?: number;
  /** How long a new onion connection may take to send its PROXY line. */
  headerTimeoutMs?: number;
  /** Sees every request with its visitor before it is forwarded (metering hooks in here). */
  onRequest?: (visitor: Visitor, req: IncomingMessage) => void;
}

/**
 * The visitor-facing side of the bridge: the onion listener (reached only by tor, PROXY line
 * first) and the plain HTTP port, both forwarding to the upstream.
 */
export class GatewayService implements Service {
  readonly name = 'gateway';
  private site: StaticSite | undefined;
  private upstream: URL | undefined;
  private plain: Server | undefined;
  private onionHttp: Server | undefined;
  private onionTcp: NetServer | undefined;
  private closeForwarder: (() => void) | undefined;
  private onionPort = 0;
  private boundHttpPort = 0;
  private upstreamUp = false;
  private lastUpstreamError: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: GatewayOptions) {}

  /** Where tor's HiddenServicePort 80 must point. Valid after start. */
  onionTarget(): string {
    return `127.0.0.1:${this.onionPort}`;
  }

  httpPort(): number {
    return this.boundHttpPort;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    if (this.opts.upstream) {
      this.upstream = this.opts.upstream;
    } else {
      this.site = new StaticSite(this.opts.wwwDir);
      this.upstream = await this.site.start();
      log.info(`serving ${this.opts.wwwDir} (no UPSTREAM_URL set)`, { service: this.name });
    }
    const upstream = this.upstream;
    const onUpstreamError = (err: Error) => {
      this.lastUpstreamError = err.message;
      if (this.upstreamUp) log.warn(`upstream ${upstream.origin} failed: ${err.message}`, { service: this.name });
      this.upstreamUp = false;
    };

    const onionForwarder = createForwarder({ upstream, onUpstreamError });
    const plainForwarder = createForwarder({
      upstream,
      onUpstreamError,
      responseHeaders: (req) => {
        const onion = this.opts.onionAddress();
        return onion ? ['Onion-Location', `http://${onion}${req.url ?? '/'}`] : undefined;
      },
    });
    this.closeForwarder = () => {
      onionForwarder.close();
      plainForwarder.close();
    };

    const onUpgradeError = (err: Error) => log.debug(`upgrade tunnel failed: ${err.message}`, { service: this.name });
    const observe = this.opts.onRequest;
    const withVisitor = (forward: (req: IncomingMessage, res: ServerResponse) => void) =>
      observe ? (req: IncomingMessage, res: ServerResponse) => (observe(visitorOf(req.socket), req), forward(req, res)) : forward;
    this.onionHttp = createHttpServer(withVisitor(onionForwarder.forward));
    this.onionHttp.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, onUpgradeError));
    this.onionTcp = createOnionListener({
      onConnection: (socket) => this.onionHttp!.emit('connection', socket),
      headerTimeoutMs: this.opts.headerTimeoutMs,
      onReject: (reason) => log.debug(`closed an onion connection: ${reason}`, { service: this.name }),
    });
    this.onionPort = await listen(this.onionTcp, 0, '127.0.0.1');

    this.plain = createHttpServer(withVisitor(plainForwarder.forward));
    this.plain.on('upgrade', (req, socket, head) => tunnelUpgrade(req, socket as never, head, upstream, onUpgradeError));
    this.boundHttpPort = await listen(this.plain, this.opts.httpPort, this.opts.listenHost);
    log.info(`listening on ${this.opts.listenHost}:${this.boundHttpPort} (plain) and ${this.onionTarget()} (onion, PROXY protocol)`, { service: this.name });

    await this.probe();
    this.probeTimer = setInterval(() => void this.probe(), 5000);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (!this.upstream) return;
    const up = await probeUpstream(this.upstream);
    if (up && !this.upstreamUp) this.opts.log.info(`upstream ${this.upstream.origin} is reachable`, { service: this.name });
    if (!up && this.upstreamUp) this.opts.log.warn(`upstream ${this.upstream.origin} is not reachable`, { service: this.name });
    if (!up) this.lastUpstreamError ??= 'connection refused or timed out';
    this.upstreamUp = up;
  }

  async stop(): Promise<void> {
    clearInterval(this.probeTimer);
    const drain = this.opts.drainMs ?? 3000;
    const onionHttp = this.onionHttp;
    await Promise.all([
      this.plain ? closeGracefully(this.plain, drain) : undefined,
      this.onionTcp ? closeGracefully(this.onionTcp, drain) : undefined,
    ]);
    onionHttp?.closeAllConnections();
    this.closeForwarder?.();
    await this.site?.stop();
    this.plain = this.onionHttp = this.onionTcp = undefined;
  }

  health(): Health {
    const upstream = this.upstream?.origin ?? 'none';
    return this.upstreamUp
      ? { ok: true, detail: `upstream ${upstream} reachable`, upstream, upstreamReachable: true }
      : { ok: false, detail: `upstream ${upstream} not reachable: ${this.lastUpstreamError ?? 'not started'}`, upstream, upstreamReachable: false };
  }
}
