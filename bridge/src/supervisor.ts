import type { Config } from './config/config.js';
import { ApiService } from './gateway/api/api-service.js';
import { GatewayService } from './gateway/gateway-service.js';
import type { Logger } from './log/logger.js';
import type { Health, Service } from './service.js';
import { createBootstrapProgress } from './tor/bootstrap-progress.js';
import { TorService } from './tor/tor-service.js';

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
  private readonly started: Service[] = [];
  private announced = false;

  constructor(private readonly opts: SupervisorOptions) {
    const { config, log } = opts;
    this.gateway = new GatewayService({
      upstream: config.upstream,
      wwwDir: config.paths.www,
      listenHost: config.listenHost,
      httpPort: config.httpPort,
      onionAddress: () => this.onionAddress(),
      log,
    });
    this.tor = new TorService({
      torBin: config.tor.bin,
      torDir: config.paths.tor,
      // The gateway's onion listener has an ephemeral port, known once it listens.
      ports: () => [{ virtualPort: 80, target: this.gateway.onionTarget() }],
      extraConfigFile: config.tor.extraConfigFile,
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
    this.tor.on('published', (address) => this.announce(address));
  }

  private onionAddress(): string | undefined {
    try {
      return this.tor.onionAddress();
    } catch {
      return undefined;
    }
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { log } = this.opts;
    await this.startService(this.gateway, signal);
    await this.startService(this.tor, signal);
    await this.startService(this.api, signal);
    log.info(`onion address ${this.tor.onionAddress()}; waiting for tor to publish it`);
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
  }

  async stop(): Promise<void> {
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
      api: this.api.health(),
    };
  }
}
