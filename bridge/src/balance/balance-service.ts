// `torplus-bridge balance`: the Onionbalance frontend. One onion address (the master) served by several
// bridges: each backend bridge beats into PostgreSQL (cluster/instances.ts), and this service publishes a
// master descriptor listing the introduction points of the live ones, through Debian's onionbalance 0.2.2
// on a tor of its own.
//
// onionbalance reads its backends only at start and never drops a dead one by itself (the HSDirs keep
// serving the dead backend's last descriptor for hours, and every re-fetch looks fresh), so the registry is
// the health check: every poll compares the live set with the one onionbalance runs with, and a change
// means a new config.yaml and a restart. Only a change of the SET does (besides its own crash or its tor's),
// because each restart costs a new round of descriptor fetches before it publishes again.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { diffBackends } from './backend-set.js';
import { FrontendTor, type FrontendTorOptions, type FrontendTorPort } from './frontend-tor.js';
import { chooseMasterKey, ensurePrivateDir, type MasterKeyChoice } from './master-key.js';
import { writeOnionbalanceConfig } from './onionbalance-config.js';
import { OnionbalanceProcess, type OnionbalancePort, type OnionbalanceProcessOptions, type Upload } from './onionbalance-process.js';
import { isPrivateTestNetwork, testNetworkProblem } from './tor-network.js';

/** The registry as this service uses it: PgInstanceRegistry, or a fake. */
export interface BalanceRegistry {
  live(maxAgeMs: number): Promise<ReadonlyArray<{ id: string; onion: string }>>;
}

export interface BalanceServiceOptions {
  /** TOR_DIR: the master key, onionbalance's folder and the frontend tor's data. */
  torDir: string;
  torBin: string;
  /** TOR_EXTRA_CONFIG: which network the frontend tor joins, and whether onionbalance runs --is-testnet. */
  extraConfigFile?: string | undefined;
  /** DOMAIN, for the sentence after the torplus= line. */
  domain?: string | undefined;
  registry: BalanceRegistry;
  log: Logger;
  /** Where the publisher-facing lines go; stdout by default. */
  print?: (line: string) => void;
  onionbalanceBin?: string;
  /** How often to read the live backends; default 10 s. */
  pollIntervalMs?: number;
  /** A backend is live when it beat within this; default 30 s (three of its beats). */
  maxBeatAgeMs?: number;
  /** For tests: the tor and onionbalance to use instead of real processes. */
  createTor?: (o: FrontendTorOptions) => FrontendTorPort;
  createOnionbalance?: (o: OnionbalanceProcessOptions) => OnionbalancePort;
}

export interface BalanceHealth extends Health {
  masterOnion: string | undefined;
  /** Where the master key came from: this frontend's own, a single bridge's, or new. */
  keySource: MasterKeyChoice['source'] | undefined;
  testnet: boolean;
  torBootstrapped: boolean;
  onionbalanceRunning: boolean;
  onionbalanceRestarts: number;
  /** The backends in config.yaml: what the master descriptor is made from. */
  backends: string[];
  /** The backends that beat within maxBeatAgeMs at the last poll. */
  liveBackends: string[];
  /** When onionbalance last uploaded a master descriptor (ISO time), if ever. */
  lastPublishAt: string | undefined;
}

export class BalanceService implements Service {
  readonly name = 'balance';
  private readonly log: Logger;
  private readonly print: (line: string) => void;
  private key: MasterKeyChoice | undefined;
  private testnet = false;
  private tor: FrontendTorPort | undefined;
  private ob: OnionbalancePort | undefined;
  /** The set in config.yaml; never empty once set (onionbalance refuses an empty list). */
  private backends: string[] = [];
  private live: string[] = [];
  /** `port backends` onionbalance was last started with; undefined while it is not meant to run. */
  private launchedWith: string | undefined;
  /** The set onionbalance was last started with: what its uploads are made from. */
  private publishing: string[] = [];
  private uploadsThisRun = 0;
  private lastUpload: Upload | undefined;
  private announced = false;
  private stopping = false;
  private noneLive = false;
  private registryProblem = '';
  private readonly ignoredWarned = new Set<string>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();

  // A plain field, not a parameter property: Node's type stripping (child processes, scripts) rejects those.
  private readonly o: BalanceServiceOptions;

  constructor(o: BalanceServiceOptions) {
    this.o = o;
    this.log = o.log.child({ service: 'balance' });
    this.print = o.print ?? ((l) => process.stdout.write(l + '\n'));
  }

  private get paths() {
    const ob = join(this.o.torDir, 'onionbalance');
    return { ob, config: join(ob, 'config.yaml'), tor: join(this.o.torDir, 'balance-tor') };
  }

  /** The site's address; known once start() has chosen the key. */
  get masterOnion(): string | undefined {
    return this.key?.onion;
  }

  /** Resolves once the frontend tor runs and the registry was read once; onionbalance follows tor's bootstrap. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.tor) throw new Error('the balance service was already started');
    this.stopping = false;
    const key = await chooseMasterKey(this.o.torDir);
    this.key = key;
    for (const note of key.notes) this.log.warn(note);
    const extra = this.o.extraConfigFile ? await readFile(this.o.extraConfigFile, 'utf8') : undefined;
    this.testnet = isPrivateTestNetwork(extra);
    const problem = testNetworkProblem(extra);
    if (problem) this.log.warn(problem);
    await ensurePrivateDir(this.paths.ob);
    this.log.info(`frontend for ${key.onion}`, { key: key.file, keySource: key.source, testnet: this.testnet });

    const torOptions: FrontendTorOptions = {
      torBin: this.o.torBin,
      dir: this.paths.tor,
      log: this.o.log,
      ...(this.o.extraConfigFile ? { extraConfigFile: this.o.extraConfigFile } : {}),
    };
    const tor = (this.o.createTor ?? ((x) => new FrontendTor(x)))(torOptions);
    const obOptions: OnionbalanceProcessOptions = {
      configFile: this.paths.config,
      masterOnion: key.onion,
      testnet: this.testnet,
      controlPort: () => tor.controlPort,
      log: this.o.log,
      ...(this.o.onionbalanceBin ? { bin: this.o.onionbalanceBin } : {}),
    };
    const ob = (this.o.createOnionbalance ?? ((x) => new OnionbalanceProcess(x)))(obOptions);
    this.tor = tor;
    this.ob = ob;
    tor.on('bootstrapped', () => void this.reconcile('tor bootstrapped'));
    tor.on('down', () => void this.reconcile('tor is down'));
    ob.on('uploaded', (u) => this.onUploaded(u));

    await tor.start(signal);
    await this.poll();
    this.schedulePoll();
  }

  /**
   * Reads the live backends and acts on a change of the set; resolves once onionbalance is in line (changes
   * from tor's events included). Public for tests; the timer calls it too, the next poll after this one.
   */
  poll(): Promise<void> {
    this.polling ??= this.doPoll()
      .then(() => this.queue)
      .finally(() => (this.polling = undefined));
    return this.polling;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.pollTimer);
    // onionbalance first: it would only complain about its tor going away. Their stops also cut short a
    // (re)start in progress, which the queue may be waiting for.
    await this.ob?.stop();
    await this.tor?.stop();
    await this.queue;
  }

  health(): BalanceHealth {
    const t = this.tor?.health();
    const torBootstrapped = t?.bootstrapped ?? false;
    const onionbalanceRunning = this.ob?.running ?? false;
    const n = this.backends.length;
    let detail: string;
    if (!this.tor) detail = 'not started';
    else if (!torBootstrapped) detail = `tor: ${t?.detail ?? 'not running'}`;
    else if (n === 0) detail = `waiting for the first backend to beat into the registry${this.registryProblem ? ` (${this.registryProblem})` : ''}`;
    else if (!onionbalanceRunning) detail = `onionbalance is not running${this.ob?.lastProblem ? `: ${this.ob.lastProblem}` : ''}`;
    else if (this.registryProblem) detail = `cannot read the registry (${this.registryProblem}); publishing the last known ${n} backends`;
    else if (this.live.length === 0) detail = `no live backends: keeping the last descriptor (from ${n} backends)`;
    else detail = `publishing ${this.key?.onion} from ${n} backends${this.lastUpload ? '' : ' (no descriptor uploaded yet)'}`;
    return {
      ok: torBootstrapped && onionbalanceRunning && n > 0 && this.live.length > 0 && !this.registryProblem,
      detail,
      masterOnion: this.key?.onion,
      keySource: this.key?.source,
      testnet: this.testnet,
      torBootstrapped,
      onionbalanceRunning,
      onionbalanceRestarts: this.ob?.restarts ?? 0,
      backends: [...this.backends],
      liveBackends: [...this.live],
      lastPublishAt: this.lastUpload ? new Date(this.lastUpload.at).toISOString() : undefined,
    };
  }

  // ------------------------------------------------------------------------------------------

  private schedulePoll(): void {
    if (this.stopping) return;
    this.pollTimer = setTimeout(() => {
      void this.poll().finally(() => this.schedulePoll());
    }, this.o.pollIntervalMs ?? 10_000);
  }

  private async doPoll(): Promise<void> {
    if (this.stopping || !this.key) return;
    let listed: ReadonlyArray<{ id: string; onion: string }>;
    try {
      listed = await this.o.registry.live(this.o.maxBeatAgeMs ?? 30_000);
    } catch (err) {
      // The last set stays: a database outage is not a reason to take backends out of the descriptor.
      const msg = (err as Error).message;
      if (!this.registryProblem) this.log.warn(`cannot read the live backends from the registry: ${msg}; keeping the last set`, { backends: this.backends });
      this.registryProblem = msg;
      return;
    }
    if (this.registryProblem) this.log.info('the registry is readable again');
    this.registryProblem = '';
    const diff = diffBackends(this.backends, listed.map((i) => i.onion), this.key.onion);
    for (const i of diff.ignored) {
      if (this.ignoredWarned.has(i.onion)) continue;
      this.ignoredWarned.add(i.onion);
      this.log.warn(`ignoring a registry entry: ${i.onion} is ${i.why}`);
    }
    this.live = diff.keptLast ? [] : diff.next;
    if (diff.keptLast) {
      if (!this.noneLive) {
        this.noneLive = true;
        const ageS = (this.o.maxBeatAgeMs ?? 30_000) / 1000;
        if (this.backends.length === 0) this.log.warn(`no live backends yet (none beat within ${ageS} s): onionbalance starts when the first one does`);
        else this.log.warn(`no live backends (none beat within ${ageS} s): keeping the last descriptor until one is back`, { backends: this.backends });
      }
      return;
    }
    if (this.noneLive) this.log.info('live backends again', { backends: diff.next });
    this.noneLive = false;
    if (!diff.changed) return;
    this.log.info('the live backends changed', { added: diff.added, removed: diff.removed, backends: diff.next });
    this.backends = diff.next;
    await this.reconcile('the live backends changed');
  }

  /**
   * Brings onionbalance in line with tor and the backend set: running on the current tor's control port with
   * the current set, or stopped while tor is down. One at a time, in call order.
   */
  private reconcile(reason: string): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.stopping || !this.tor || !this.ob || !this.key) return;
      const port = this.tor.bootstrapped ? this.tor.controlPort : undefined;
      if (port === undefined) {
        // It reads the consensus at start and talks to tor only: without tor it can only fail.
        if (this.launchedWith !== undefined) {
          this.launchedWith = undefined;
          this.log.info(`stopping onionbalance until tor is back (${reason})`);
          await this.ob.stop();
        }
        return;
      }
      if (this.backends.length === 0) return;
      const want = `${port} ${this.backends.join(',')}`;
      if (want === this.launchedWith) return;
      await writeOnionbalanceConfig(this.paths.config, this.key.file, this.backends);
      this.log.info(`${this.launchedWith === undefined ? 'starting' : 'restarting'} onionbalance (${reason})`, { backends: this.backends });
      this.launchedWith = want;
      this.publishing = [...this.backends];
      this.uploadsThisRun = 0;
      await this.ob.restart(reason);
    });
    this.queue = run.catch((err: unknown) => {
      this.log.warn(`onionbalance (${reason}): ${(err as Error).message}`);
    });
    return this.queue;
  }

  private onUploaded(u: Upload): void {
    this.lastUpload = u;
    const fields = { descriptor: u.descriptor, backends: this.publishing, instances: u.instances };
    // Once per onionbalance run at info (the first sign the new set is published); the periodic ones at debug.
    if (this.uploadsThisRun++ === 0) this.log.info('master descriptor uploaded', fields);
    else this.log.debug('master descriptor uploaded', fields);
    if (this.announced || !this.key) return;
    this.announced = true;
    this.print(`torplus=${this.key.onion}`);
    const record = this.o.domain ? `torplus.${this.o.domain}` : 'torplus.<your domain>';
    this.print(
      `Publish the line above as a DNS TXT record on ${record} so that TorPlus clients find this site: it is the ` +
        'address of every bridge behind this frontend.',
    );
  }
}
