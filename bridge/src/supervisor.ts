import type { Config } from './config/config.js';
import { ApiService } from './gateway/api/api-service.js';
import { GatewayService } from './gateway/gateway-service.js';
import type { Logger } from './log/logger.js';
import type { Health, Service } from './service.js';
import { createBootstrapProgress } from './tor/bootstrap-progress.js';
import { TorService } from './tor/tor-service.js';
import { adminRouter } from './gateway/api/admin-routes.js';
import { loadAdminToken } from './gateway/api/admin-token.js';
import { paymentsRouter } from './gateway/api/payments-routes.js';
import { Meter } from './gateway/meter/meter.js';
import { meterPaymentPort, paywallPaymentPort } from './ports.js';
import { PaywallServer } from './gateway/paywall/paywall-server.js';
import { PAY_PREFIX } from './gateway/paywall/pay-page.js';
import type { Visitor } from './gateway/visitor.js';
import { PaymentsService } from './payments/payments-service.js';
import { PgLeadership } from './cluster/pg-leadership.js';
import { BackendHeartbeat } from './cluster/backend-heartbeat.js';
import { PgInstanceRegistry } from './cluster/instances.js';
import { HorizonClient } from './payments/horizon.js';
import { TxtRecordCheck } from './dns/txt-record-check.js';
import { TlsService, tlsWanted } from './tls/tls-service.js';
import { createBridgeMetrics } from './gateway/api/metrics/metrics.js';
import { dashboardRouter } from './gateway/api/dashboard/dashboard-routes.js';
import { dashboardSource, metricsSource, PaymentCounts } from './views.js';
import { WebContainerWatcher } from './docker/web-container-watcher.js';
import { Keypair } from '@stellar/stellar-sdk';
import { IpfsService } from './ipfs/ipfs-service.js';
import { ipfsAdminRouter, ipfsRouter } from './gateway/api/ipfs-routes.js';
import type { Secret } from './config/secret.js';
import { CONTROL_SOCKET, ControlServer, type CommandHandler } from './control/control-socket.js';
import { formatFillSummary, type FillProgress } from './ipfs/fill/index.js';
import { join } from 'node:path';

export interface SupervisorOptions {
  config: Config;
  log: Logger;
  /** Where the publisher-facing lines (the TXT record) go; stdout by default. */
  print?: (line: string) => void;
}

/**
 * Builds the services from the configuration, starts them in dependency order, and stops them in
 * reverse. Each service gets what it needs passed in; none reaches into another.
 */
export class Supervisor {
  readonly gateway: GatewayService;
  readonly tor: TorService;
  readonly api: ApiService;
  readonly payments: PaymentsService;
  readonly meter: Meter;
  /** The embedded IPFS node; undefined with IPFS_ENABLED=false. */
  readonly ipfs: IpfsService | undefined;
  private readonly started: Service[] = [];
  private announced = false;
  private ipfsAnnounced = false;
  private control: ControlServer | undefined;
  /** HTTPS certificates (SSL_DIR, ACME); undefined when there is neither a certificate nor ACME. */
  readonly tls: TlsService | undefined;
  /** The web container's watcher (WEB_CONTAINER); undefined when not asked for. */
  readonly web: WebContainerWatcher | undefined;
  /** The pay page's answers (PAYWALL=page with a seed); undefined otherwise. */
  readonly paywall: PaywallServer | undefined;
  /** BALANCE_MASTER_ONION: this backend's heartbeats for the Onionbalance frontend. */
  readonly heartbeat: BackendHeartbeat | undefined;
  /** The TXT record check; undefined without DOMAIN. */
  readonly dns: TxtRecordCheck | undefined;
  private admin: Secret | undefined;
  private readonly counts: PaymentCounts;

  constructor(private readonly opts: SupervisorOptions) {
    const { config, log } = opts;
    this.payments = new PaymentsService({
      config: config.payments, dataDir: config.paths.data, log,
      siteName: () => (config.domain ? `torplus.${config.domain}` : this.siteOnion()),
      // Bridges sharing PostgreSQL run the payment stream and tab settlement on one of them at a time.
      ...(config.payments.databaseUrl
        ? { leadership: new PgLeadership({ url: config.payments.databaseUrl.reveal(), onError: (err) => log.debug(`leadership: ${err.message}`, { service: 'payments' }) }) }
        : {}),
    });
    this.meter = new Meter({
      freeBytes: config.payments.freeBytes,
      graceSeconds: config.payments.graceSeconds,
      throttleBytesPerSec: config.payments.throttleBytesPerSec,
      service: 'tor',
      payments: config.payments.seed ? meterPaymentPort(this.payments) : undefined,
      onError: (err) => log.warn(`payment request failed: ${err.message}`, { service: 'meter' }),
    });
    this.counts = new PaymentCounts(this.payments);
    // The site's visitors only: peers' ('ipfs') payments go to the IPFS node's own meter.
    this.payments.on('complete', (e) => e.request.service === 'tor' && this.meter.paymentComplete(e));
    if (config.ipfs.enabled) {
      this.ipfs = new IpfsService({
        config: config.ipfs,
        wwwDir: config.paths.www,
        log,
        socks: (signal) => this.tor.socksAddress(signal),
        // The onion is known before tor runs (start() prepares the key first).
        ...(config.ipfs.libp2p ? { p2p: { onion: () => this.tor.onionAddress(), virtualPort: config.ipfs.listenPort } } : {}),
      });
      this.ipfs.on('published', (p) => {
        if (this.ipfsAnnounced && !p.changed) return;
        this.ipfsAnnounced = true;
        this.announceRoot(p.root.toString());
      });
    }
    if (config.payments.seed && config.payments.paywall === 'page') {
      this.paywall = new PaywallServer({
        payments: paywallPaymentPort(this.payments),
        throttleBytesPerSec: config.payments.throttleBytesPerSec,
        ...(config.payments.paywallTemplate !== undefined ? { template: config.payments.paywallTemplate } : {}),
        log,
      });
    }
    const tlsOptions = { sslDir: config.paths.ssl, dataDir: config.paths.data, hostname: config.domain && `torplus.${config.domain}`, acme: config.tls.acme, log };
    if (tlsWanted(tlsOptions)) this.tls = new TlsService(tlsOptions);
    this.gateway = new GatewayService({
      upstream: config.upstream,
      wwwDir: config.paths.www,
      routes: () => [
        ...(this.ipfs ? [{ prefix: '/ipfs/', upstream: this.ipfs.gatewayUrl() }] : []),
        ...(this.tls?.challengeUrl() ? [{ prefix: '/.well-known/acme-challenge/', upstream: this.tls.challengeUrl()! }] : []),
        // Unmetered: a throttled visitor reaches the pay page's answers at once, and never gets a 402 for them.
        ...(this.paywall ? [{ prefix: PAY_PREFIX, upstream: this.paywall.url(), metered: false }] : []),
      ],
      ...(this.paywall ? { paywall: { throttleBytesPerSec: config.payments.throttleBytesPerSec, ...(config.payments.paywallTemplate !== undefined ? { template: config.payments.paywallTemplate } : {}) } } : {}),
      ...(this.tls ? { tls: { source: this.tls.source(), httpsPort: config.tls.httpsPort, sslDir: config.paths.ssl } } : {}),
      listenHost: config.listenHost,
      httpPort: config.httpPort,
      // Onion-Location names the site's address: behind Onionbalance, the master's.
      onionAddress: () => this.siteOnion(),
      log,
      workers: config.proxyWorkers,
      meter: config.payments.seed
        ? {
            meter: this.meter,
            paymentUrl: (visitor, host, id) => this.paymentUrl(visitor, host, id),
            requestJson: (r) => this.payments.requestJson(r),
          }
        : undefined,
    });
    this.tor = new TorService({
      torBin: config.tor.bin,
      torDir: config.paths.tor,
      // The gateway's onion listener has an ephemeral port, known once it listens.
      ports: () => [
        { virtualPort: 80, target: this.gateway.onionTarget() },
        { virtualPort: 8000, target: this.api.onionTarget() },
        ...(this.ipfs?.p2pTarget() ? [{ virtualPort: config.ipfs.listenPort, target: this.ipfs.p2pTarget()! }] : []),
        ...(this.gateway.onionTlsTarget() ? [{ virtualPort: 443, target: this.gateway.onionTlsTarget()! }] : []),
      ],
      extraConfigFile: config.tor.extraConfigFile,
      // Peers' onions are dialed through tor's SOCKS port (fill, libp2p): opened on loopback only.
      ...(config.ipfs.enabled ? { socksPort: 'auto' as const } : {}),
      ...(config.balance ? { onionbalanceMaster: config.balance.masterOnion } : {}),
      powDefense: config.tor.powDefense,
      introDosDefense: config.tor.introDosDefense,
      log,
      progress: createBootstrapProgress({ log: log.child({ service: 'tor' }) }),
    });
    this.api = new ApiService({
      host: config.listenHost,
      port: config.apiPort,
      log,
      healthReport: () => this.healthReport(),
    });
    // Behind Onionbalance the site's address is the master's: that is the record to publish and check.
    const siteAddress = (own: string) => config.balance?.masterOnion ?? own;
    this.tor.on('published', (address) => this.announce(siteAddress(address)));
    if (config.balance && config.payments.databaseUrl) {
      const url = config.payments.databaseUrl;
      this.heartbeat = new BackendHeartbeat({
        open: () => PgInstanceRegistry.open(url.reveal(), (err) => log.debug(`instance registry: ${err.message}`, { service: 'instances' })),
        onion: () => this.onionAddress(),
        stats: () => {
          const t = this.meter.totals();
          return { visitors: this.meter.stats().visitors, bytesServed: t.free + t.paid };
        },
        log,
      });
    }
    if (config.docker.webContainer) {
      this.web = new WebContainerWatcher({
        container: config.docker.webContainer,
        socketPath: config.docker.socketPath,
        restartUnhealthyAfterMs: config.docker.restartUnhealthyAfterMs,
        log,
      });
    }
    if (config.domain) {
      this.dns = new TxtRecordCheck({
        domain: config.domain,
        servers: config.dnsServers,
        // Soon after the descriptor is up, not at once: a publisher reads the record, then adds it.
        firstDelayMs: Math.min(5_000, config.dnsRetryMs),
        retryMs: config.dnsRetryMs,
        onChange: (h) => (h.state === 'found' ? log.info(`DNS: ${h.detail}`, { service: 'dns' }) : log.warn(`DNS: ${h.detail}`, { service: 'dns' })),
      });
      this.tor.on('published', (address) => this.dns?.published(siteAddress(address)));
    }
  }

  /** The payment request's URL as this visitor can reach it: the onion's port 8000, or API_PORT. */
  private paymentUrl(visitor: Visitor, hostHeader: string | undefined, id: string): string {
    const path = `/v1/payment-requests/${id}`;
    const onion = this.siteOnion();
    if (visitor.kind === 'circuit' && onion) return `http://${onion}:8000${path}`;
    const host = (hostHeader || '127.0.0.1').replace(/:\d+$/, '');
    return `http://${host}:${this.api.port() || this.opts.config.apiPort}${path}`;
  }

  /**
   * The site's onion address as visitors know it: behind Onionbalance the master's (a visitor's client
   * refuses to pay a request on another host than the one it downloads from), else this bridge's own.
   */
  private siteOnion(): string | undefined {
    return this.opts.config.balance?.masterOnion ?? this.onionAddress();
  }

  private onionAddress(): string | undefined {
    try {
      return this.tor.onionAddress();
    } catch {
      return undefined;
    }
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { log, config } = this.opts;
    // IPFS first: the gateway's forwarders need its loopback address; and libp2p listens on the
    // onion address, so the onion key is made (or read) before anything starts.
    if (this.ipfs) {
      await this.tor.prepareAddress();
      await this.startService(this.ipfs, signal);
      this.api.mount('/v1', ipfsRouter(this.ipfs));
      this.api.mount('/v1', ipfsAdminRouter(this.ipfs, this.adminToken()));
    }
    if (this.tls) await this.startService(this.tls, signal);
    // Before the gateway: its forwarders need the pay page's loopback address.
    if (this.paywall) await this.startService(this.paywall, signal);
    await this.startService(this.gateway, signal);
    // The CA checks its challenge on HTTP_PORT: ACME starts once the gateway listens.
    this.tls?.startAcme(signal);
    await this.startPayments(signal);
    await this.ipfs?.startPeerPayments({
      payments: this.payments,
      freeBytes: config.ipfs.freeBytes,
      graceSeconds: config.payments.graceSeconds,
      throttleBytesPerSec: config.ipfs.throttleBytesPerSec,
      payer: {
        keypair: config.payments.seed ? Keypair.fromSecret(config.payments.seed.reveal()) : undefined,
        ledger: new HorizonClient(config.payments.horizonUrl),
        maxSpendStroops: config.ipfs.fillMaxSpendStroops,
      },
    });
    this.mountViews();
    await this.startService(this.api, signal);
    await this.startService(this.tor, signal);
    if (this.dns) await this.startService(this.dns, signal);
    if (this.heartbeat) await this.startService(this.heartbeat, signal);
    if (this.web) await this.startService(this.web, signal);
    await this.startControl();
    log.info(`onion address ${this.tor.onionAddress()}; waiting for tor to publish it`);
  }

  /** The local control socket, through which `torplus-bridge fill` runs in this process. */
  private async startControl(): Promise<void> {
    const { config, log } = this.opts;
    const path = join(config.paths.data, CONTROL_SOCKET);
    const control = new ControlServer(path, this.ipfs ? { fill: this.fillCommand(this.ipfs) } : {});
    try {
      await control.start();
      this.control = control;
    } catch (err) {
      // Not fatal: the bridge serves without it; only the CLI's fill needs it.
      log.warn(`no control socket at ${path} (${(err as Error).message}); \`torplus-bridge fill\` will not reach this bridge`);
    }
  }

  private fillCommand(ipfs: IpfsService): CommandHandler {
    return async (args, io) => {
      const peers = Array.isArray(args.peers) ? args.peers.filter((p): p is string => typeof p === 'string') : undefined;
      const summary = await ipfs.fill({ peers: peers?.length ? peers : undefined, signal: io.signal, progress: (p: FillProgress) => io.event({ ...p }) });
      io.out(formatFillSummary(summary));
      // A cron job should fail only when nothing could be done: one peer offline is normal.
      return summary.peers.length === 0 || summary.peers.some((p) => p.status === 'ok') ? 0 : 1;
    };
  }

  /** Payments, then their API routes. Without a seed the bridge serves for free and says so once. */
  private async startPayments(signal?: AbortSignal): Promise<void> {
    const { config, log } = this.opts;
    await this.startService(this.payments, signal);
    if (!config.payments.seed) {
      log.warn('no seed set: payments are off and every visitor is served for free', { service: 'payments' });
      return;
    }
    this.counts.refreshEarnings();
    this.api.mount('/v1', paymentsRouter(this.payments));
    this.api.mount('/v1/admin', adminRouter(this.payments, this.adminToken()));
  }

  /** The operator's views on API_PORT, both behind the admin token: /metrics and the dashboard at /. */
  private mountViews(): void {
    const { config } = this.opts;
    const heartbeat = this.heartbeat;
    const sources = {
      meter: this.meter, payments: this.payments, tor: this.tor, ipfs: this.ipfs, tls: this.tls,
      ...(heartbeat && config.balance ? { instances: { master: config.balance.masterOnion, list: () => heartbeat.instances() } } : {}),
    };
    const metrics = createBridgeMetrics(metricsSource(sources, this.counts));
    this.payments.on('verified', (v) => metrics.observeVerification(v.seconds));
    this.api.mount('/', metrics.router(this.adminToken()));
    const source = dashboardSource({ ...sources, counts: this.counts, dns: this.dns, domain: config.domain, network: config.payments.network });
    this.api.mount('/', dashboardRouter(source, this.adminToken()));
  }

  /** The admin API's bearer token: ADMIN_TOKEN, or made once into DATA_DIR/admin-token and shown once. */
  private adminToken(): Secret {
    if (this.admin) return this.admin;
    const { config } = this.opts;
    const admin = loadAdminToken(config.payments.adminToken, config.paths.data);
    if (admin.created) {
      const print = this.opts.print ?? ((l: string) => process.stdout.write(l + '\n'));
      print(`admin token (shown once; kept 0600 in ${admin.file}): ${admin.token.reveal()}`);
    }
    this.admin = admin.token;
    return admin.token;
  }

  private async startService(s: Service, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await s.start(signal);
    this.started.push(s);
  }

  /** Prints the TXT record once, when the descriptor is first published. */
  private announce(address: string): void {
    if (this.announced) return;
    this.announced = true;
    const print = this.opts.print ?? ((l: string) => process.stdout.write(l + '\n'));
    const domain = this.opts.config.domain;
    print(`torplus=${address}`);
    print(
      domain
        ? `Publish the line above as a DNS TXT record on torplus.${domain} so that TorPlus clients find this site.`
        : 'Publish the line above as a DNS TXT record on torplus.<your domain> (set DOMAIN to have it checked).',
    );
    // IPFS peers dial this address (PEERS needs only the onion; this is for libp2p tools).
    const id = this.ipfs?.identity();
    if (id) print(`libp2p=${id.multiaddrs[0]}`);
  }

  /** The site's IPFS root, and the DNSLink record that names it, on every change. */
  private announceRoot(cid: string): void {
    const print = this.opts.print ?? ((l: string) => process.stdout.write(l + '\n'));
    const domain = this.opts.config.domain;
    print(`ipfs=/ipfs/${cid}`);
    print(`DNSLink: publish the TXT record "dnslink=/ipfs/${cid}" on _dnslink.torplus.${domain ?? '<your domain>'}, beside the torplus= record.`);
  }

  async stop(): Promise<void> {
    await this.control?.stop();
    this.control = undefined;
    this.meter.close();
    const errors: unknown[] = [];
    while (this.started.length > 0) {
      const s = this.started.pop()!;
      try {
        await s.stop();
      } catch (err) {
        errors.push(err);
        this.opts.log.error(`stopping ${s.name} failed: ${(err as Error).message}`);
      }
    }
  }

  healthReport(): Record<string, Health> {
    const tor = this.tor.health();
    return {
      tor: { ok: tor.ok && tor.bootstrapped, detail: tor.detail, bootstrapped: tor.bootstrapped, progress: tor.progress, restarts: tor.restarts, pid: tor.pid },
      onion: { ok: tor.published, detail: tor.published ? 'descriptor published' : 'not published yet', address: tor.address, published: tor.published },
      upstream: this.gateway.health(),
      payments: this.payments.health(),
      ...(this.payments.enabled ? { database: databaseHealth(this.payments.health()) } : {}),
      api: this.api.health(),
      ...(this.ipfs ? { ipfs: this.ipfs.health() } : {}),
      ...(this.dns ? { dns: this.dns.health() } : {}),
      ...(this.tls ? { tls: this.tls.health() } : {}),
      ...(this.web ? { web: this.web.health() } : {}),
      ...(this.heartbeat ? { instances: this.heartbeat.health() } : {}),
    };
  }
}

/** The payments database, as its own line in /healthz ("database: down" while PostgreSQL is away). */
function databaseHealth(p: Health): Health {
  const state = p.database === undefined ? 'not started' : String(p.database);
  return { ok: state === 'up', detail: `database: ${state}`, state, engine: p.databaseEngine };
}
