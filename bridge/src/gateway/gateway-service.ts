import type { IncomingMessage, Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { freePort } from '../util/free-port.js';
import { closeGracefully, listen } from './listeners.js';
import { createProxyServers, type ProxyServers, type Route } from './proxy-servers.js';
import type { TlsSource } from './tls-source.js';
import { MeterHost } from './meter/meter-host.js';
import { createVisitorMeter, type VisitorMeterOptions } from './meter/visitor-meter.js';
import { StaticSite } from './static-site.js';
import { probeUpstream } from './upstream-probe.js';
import type { Visitor } from './visitor.js';
import { ProxyWorkerPool } from './worker-pool.js';
import { paywallOf, type PaywallSettings } from './paywall/paywall.js';

export interface GatewayOptions {
  /** The web server to front; undefined serves `wwwDir` with the embedded static server. */
  upstream: URL | undefined;
  wwwDir: string;
  /** The bridge's own services served on both ports by path prefix (/ipfs/, ACME); read at start. */
  routes?: () => Route[];
  listenHost: string;
  httpPort: number;
  /** The onion address once known, for the Onion-Location header on the plain port. */
  onionAddress: () => string | undefined;
  log: Logger;
  /** How long in-flight requests may finish on stop. */
  drainMs?: number;
  /** How long a new onion connection may take to send its PROXY line. */
  headerTimeoutMs?: number;
  /** Sees every request with its visitor before it is forwarded (keeps the gateway to one process). */
  onRequest?: (visitor: Visitor, req: IncomingMessage) => void;
  /**
   * Meters each request's visitor (payments). The Meter stays in this process; with workers, each
   * worker meters against it over IPC (MeterHost here, RemoteVisitorMeter there), so a visitor has
   * one allowance and one throttle across all workers.
   */
  meter?: VisitorMeterOptions;
  /** PAYWALL=page (with `meter`): throttled visitors' navigations get the pay page. */
  paywall?: PaywallSettings;
  /**
   * Proxy processes (PROXY_WORKERS). 1, the default here, forwards in this process. More forks that
   * many workers that share both ports; this process keeps the health probe and the Meter. An
   * `onRequest` hook needs the requests in this process, so it keeps the gateway to one process.
   */
  workers?: number;
  /** HTTPS on `httpsPort` and behind the onion's port 443, with the certificate `source` holds. */
  tls?: { source: TlsSource; httpsPort: number; sslDir: string };
}

/**
 * The visitor-facing side of the bridge: the onion listener (reached only by tor, PROXY line
 * first) and the plain HTTP port, both forwarding to the upstream, in this process or in worker
 * processes (see ProxyWorkerPool).
 */
export class GatewayService implements Service {
  readonly name = 'gateway';
  private site: StaticSite | undefined;
  private upstream: URL | undefined;
  private plain: Server | undefined;
  private onionHttp: Server | undefined;
  private onionTcp: NetServer | undefined;
  private closeForwarder: (() => void) | undefined;
  private pool: ProxyWorkerPool | undefined;
  private meterHost: MeterHost | undefined;
  private onionPort = 0;
  private onionTlsPort = 0;
  private boundHttpsPort = 0;
  private https: ProxyServers['https'];
  private unwatchTls: (() => void) | undefined;
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

  /** Where tor's HiddenServicePort 443 must point; undefined without HTTPS. Valid after start. */
  onionTlsTarget(): string | undefined {
    return this.onionTlsPort ? `127.0.0.1:${this.onionTlsPort}` : undefined;
  }

  httpsPort(): number {
    return this.boundHttpsPort;
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
    let workers = this.opts.workers ?? 1;
    if (workers > 1 && this.opts.onRequest) {
      log.info(`forwarding in one process, not ${workers} (PROXY_WORKERS): a per-request hook needs every request here`, { service: this.name });
      workers = 1;
    }
    try {
      if (workers > 1) await this.startWorkers(workers, this.upstream);
      else await this.startHere(this.upstream);
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }

    await this.probe();
    this.probeTimer = setInterval(() => void this.probe(), 5000);
    this.probeTimer.unref();
  }

  private upstreamFailed(message: string): void {
    this.lastUpstreamError = message;
    if (this.upstreamUp) this.opts.log.warn(`upstream ${this.upstream?.origin} failed: ${message}`, { service: this.name });
    this.upstreamUp = false;
  }

  /** One process: the listeners and forwarders run here. */
  private async startHere(upstream: URL): Promise<void> {
    const { log } = this.opts;
    const servers = createProxyServers({
      upstream,
      routes: this.opts.routes?.(),
      onionAddress: this.opts.onionAddress,
      onUpstreamError: (err) => this.upstreamFailed(err.message),
      onUpgradeError: (err) => log.debug(`upgrade tunnel failed: ${err.message}`, { service: this.name }),
      onReject: (reason) => log.debug(`closed an onion connection: ${reason}`, { service: this.name }),
      headerTimeoutMs: this.opts.headerTimeoutMs,
      onRequest: this.opts.onRequest,
      meter: this.opts.meter ? createVisitorMeter({ ...this.opts.meter, ...(this.opts.paywall ? { paywall: paywallOf(this.opts.paywall) } : {}) }) : undefined,
      tls: this.opts.tls?.source,
    });
    this.https = servers.https;
    this.closeForwarder = servers.closeForwarders;
    this.onionHttp = servers.onionHttp;
    this.onionTcp = servers.onionTcp;
    this.onionPort = await listen(this.onionTcp, 0, '127.0.0.1');

    this.plain = servers.plain;
    this.boundHttpPort = await listen(this.plain, this.opts.httpPort, this.opts.listenHost);
    log.info(`listening on ${this.opts.listenHost}:${this.boundHttpPort} (plain) and ${this.onionTarget()} (onion, PROXY protocol)`, { service: this.name });
    if (this.https && this.opts.tls) {
      this.onionTlsPort = await listen(this.https.onionTcp, 0, '127.0.0.1');
      this.boundHttpsPort = await listen(this.https.plain, this.opts.tls.httpsPort, this.opts.listenHost);
      log.info(`HTTPS on ${this.opts.listenHost}:${this.boundHttpsPort} and ${this.onionTlsTarget()} (onion port 443)`, { service: this.name });
    }
  }

  /**
   * Worker processes share both ports. The ports are chosen here, before any worker starts: tor's
   * HiddenServicePort needs the onion port, and a restarted worker must come back on the same one.
   */
  private async startWorkers(workers: number, upstream: URL): Promise<void> {
    const { log } = this.opts;
    this.meterHost = this.opts.meter ? new MeterHost(this.opts.meter) : undefined;
    for (let attempt = 1; ; attempt++) {
      const onionPort = await freePort('127.0.0.1');
      const httpPort = this.opts.httpPort || (await freePort(this.opts.listenHost));
      const tls = this.opts.tls && {
        sslDir: this.opts.tls.sslDir,
        httpsPort: this.opts.tls.httpsPort || (await freePort(this.opts.listenHost)),
        onionTlsPort: await freePort('127.0.0.1'),
      };
      const pool = new ProxyWorkerPool({
        workers,
        config: {
          upstream: upstream.href,
          routes: this.opts.routes?.().map((r) => [r.prefix, r.upstream.href, r.metered] as [string, string, boolean?]),
          ...(tls ? { tls } : {}),
          listenHost: this.opts.listenHost,
          httpPort,
          onionPort,
          headerTimeoutMs: this.opts.headerTimeoutMs,
          drainMs: this.opts.drainMs ?? 3000,
          metered: this.meterHost !== undefined,
          ...(this.meterHost && this.opts.paywall ? { paywall: this.opts.paywall } : {}),
        },
        onionAddress: this.opts.onionAddress,
        log,
        onUpstreamError: (message) => this.upstreamFailed(message),
        meter: this.meterHost,
      });
      try {
        await pool.start();
      } catch (err) {
        // A port we picked was taken in the meantime: pick again.
        const msg = (err as Error).message;
        const ours = msg.includes(`:${onionPort}`) || (!this.opts.httpPort && msg.includes(`:${httpPort}`));
        if (attempt < 3 && msg.includes('EADDRINUSE') && ours) continue;
        throw err;
      }
      this.pool = pool;
      // Workers watch SSL_DIR themselves, but a folder that did not exist when they started (ACME's
      // first certificate) is only seen by their slow re-check: the primary's reload tells them now.
      if (this.opts.tls) this.unwatchTls = this.opts.tls.source.onChange(() => pool.broadcast({ t: 'tls-reload' }));
      this.onionPort = onionPort;
      this.boundHttpPort = httpPort;
      if (tls) {
        this.onionTlsPort = tls.onionTlsPort;
        this.boundHttpsPort = tls.httpsPort;
      }
      break;
    }
    log.info(
      `listening on ${this.opts.listenHost}:${this.boundHttpPort} (plain) and ${this.onionTarget()} (onion, PROXY protocol) in ${workers} proxy workers (pids ${this.pool.pids().join(', ')})`,
      { service: this.name },
    );
  }

  /** The proxy workers' process ids; empty when the gateway runs in one process. */
  workerPids(): number[] {
    return this.pool?.pids() ?? [];
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
    this.unwatchTls?.();
    this.unwatchTls = undefined;
    await this.pool?.stop();
    this.pool = undefined;
    // After the workers: they send their last counts as they exit.
    this.meterHost?.close();
    this.meterHost = undefined;
    const drain = this.opts.drainMs ?? 3000;
    const onionHttp = this.onionHttp;
    await Promise.all([
      this.plain ? closeGracefully(this.plain, drain) : undefined,
      this.onionTcp ? closeGracefully(this.onionTcp, drain) : undefined,
      this.https ? closeGracefully(this.https.plain, drain) : undefined,
      this.https ? closeGracefully(this.https.onionTcp, drain) : undefined,
    ]);
    onionHttp?.closeAllConnections();
    this.https?.onionHttps.closeAllConnections();
    this.https = undefined;
    this.closeForwarder?.();
    await this.site?.stop();
    this.plain = this.onionHttp = this.onionTcp = undefined;
  }

  health(): Health {
    const upstream = this.upstream?.origin ?? 'none';
    const workers = this.pool ? { workers: this.pool.pids().length, workerRestarts: this.pool.restarts() } : {};
    return this.upstreamUp
      ? { ok: true, detail: `upstream ${upstream} reachable`, upstream, upstreamReachable: true, ...workers }
      : { ok: false, detail: `upstream ${upstream} not reachable: ${this.lastUpstreamError ?? 'not started'}`, upstream, upstreamReachable: false, ...workers };
  }
}
