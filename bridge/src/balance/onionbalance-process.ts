// Debian's onionbalance as a supervised child of the bridge: started on the frontend tor's control port with
// the config.yaml BalanceService writes, restarted with backoff if it exits, killed with the bridge (it does
// not watch its parent, so setpriv --pdeathsig covers a bridge killed outright). Its log lines go to the
// bridge's log, and tell us when it is up and when it uploads the master descriptor.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { normalizeOnion } from '../tor/onionbalance-instance.js';
import { ObLogClassifier, introsFrom, isInitialized, loadedOnion, parseObLine, uploadedDescriptor } from './onionbalance-log.js';
import { SupervisedProcess, type SpawnSpec } from './supervised-process.js';

export interface OnionbalanceArgsOptions {
  /** The frontend tor's control port, on 127.0.0.1. */
  controlPort: number;
  configFile: string;
  /** `--is-testnet`: only for a private test network (tor-network.ts). */
  testnet: boolean;
  /**
   * A unix socket path that does not exist. onionbalance tries a control SOCKET before -i/-p, by default
   * /var/run/tor/control, which would be the system tor's; a path to nothing sends it to our port.
   */
  noSocket: string;
  /** -v; 'info' is what logs the uploads we watch for (a few lines a minute on the real network). */
  verbosity?: 'debug' | 'info' | 'warning';
}

export function onionbalanceArgs(o: OnionbalanceArgsOptions): string[] {
  if (!Number.isInteger(o.controlPort) || o.controlPort < 1 || o.controlPort > 65535) {
    throw new TypeError(`onionbalance: bad control port ${o.controlPort}`);
  }
  return [
    ...(o.testnet ? ['--is-testnet'] : []),
    '-s', o.noSocket,
    '-i', '127.0.0.1',
    '-p', String(o.controlPort),
    '-c', o.configFile,
    '-v', o.verbosity ?? 'info',
  ];
}

export interface OnionbalanceProcessOptions {
  /** Default: onionbalance on PATH, else Debian's /usr/sbin/onionbalance. */
  bin?: string;
  /** config.yaml; its folder also holds the no-socket path. */
  configFile: string;
  /** The address its key must give (checked against its "Loaded onion" line). */
  masterOnion: string;
  testnet: boolean;
  /** The frontend tor's control port now, asked on every (re)start. */
  controlPort: () => number | undefined;
  log: Logger;
  /** Until "Onionbalance initialized"; default 60 s (it fetches the consensus over the control port first). */
  readyTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL; default 2 s (see the constructor). */
  stopGraceMs?: number;
  backoff?: { initialMs?: number; maxMs?: number; stableMs?: number };
}

export interface Upload {
  descriptor: 'first' | 'second';
  /** Date.now() when the line was read. */
  at: number;
  /** Backends the descriptor is built from (its "We got N intros from M instances" line), when it said. */
  instances: number | undefined;
}

/** What BalanceService needs of onionbalance (a fake in the unit tests). */
export interface OnionbalancePort {
  /** (Re)start now with the current config.yaml and control port; a failed start is retried with backoff. */
  restart(reason: string): Promise<void>;
  stop(): Promise<void>;
  readonly running: boolean;
  readonly pid: number | undefined;
  readonly restarts: number;
  readonly lastProblem: string;
  on(event: 'uploaded', listener: (u: Upload) => void): unknown;
}

interface OnionbalanceEvents {
  uploaded: [Upload];
}

const DEBIAN_BIN = '/usr/sbin/onionbalance';

export class OnionbalanceProcess extends EventEmitter<OnionbalanceEvents> implements OnionbalancePort {
  private readonly proc: SupervisedProcess;
  private readonly log: Logger;
  private readonly classify = new ObLogClassifier();
  private lastInstances: number | undefined;

  // A plain field, not a parameter property: Node's type stripping (child processes, scripts) rejects those.
  private readonly o: OnionbalanceProcessOptions;

  constructor(o: OnionbalanceProcessOptions) {
    super();
    this.o = o;
    this.log = o.log.child({ service: 'onionbalance' });
    this.proc = new SupervisedProcess({
      name: 'onionbalance',
      log: this.log,
      command: () => this.command(),
      onLine: (line) => this.onLine(line),
      ready: async (run, signal) => {
        const loaded = await run.waitForLine((l) => loadedOnion(parseObLine(l).message) !== undefined, signal);
        const onion = loadedOnion(parseObLine(loaded).message)!;
        if (normalizeOnion(onion) !== normalizeOnion(o.masterOnion)) {
          throw new Error(`its key gives ${onion}, not the master ${o.masterOnion}`);
        }
        await run.waitForLine((l) => isInitialized(parseObLine(l).message), signal);
      },
      readyTimeoutMs: o.readyTimeoutMs ?? 60_000,
      // onionbalance 0.2.2 often logs "Signal 15 received, exiting" and then does not exit (most stops in the
      // end-to-end test; its handler calls sys.exit while stem's threads run). It keeps no state worth a clean
      // exit (the descriptors are on the HSDirs), so a short grace and SIGKILL are its normal end, not news.
      stopGraceMs: o.stopGraceMs ?? 2_000,
      sigkillLogLevel: 'debug',
      ...(o.backoff ? { backoff: o.backoff } : {}),
      dieWithParent: true,
    });
  }

  get running(): boolean {
    return this.proc.running;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get restarts(): number {
    return this.proc.restarts;
  }

  get lastProblem(): string {
    return this.proc.lastProblem;
  }

  restart(reason: string): Promise<void> {
    return this.proc.restart(reason);
  }

  stop(): Promise<void> {
    return this.proc.stop();
  }

  private command(): SpawnSpec {
    const port = this.o.controlPort();
    // Thrown here, the start is retried with backoff; BalanceService starts it only once tor is up anyway.
    if (port === undefined) throw new Error('the frontend tor is not running');
    const bin = this.o.bin ?? findOnionbalance();
    if (bin === undefined) throw new Error('onionbalance is not installed (Debian: apt-get install onionbalance)');
    const args = onionbalanceArgs({
      controlPort: port,
      configFile: this.o.configFile,
      testnet: this.o.testnet,
      noSocket: join(dirname(this.o.configFile), 'no-control-socket'),
    });
    // Unbuffered, so its lines arrive as it writes them. No status socket, even if the environment names one.
    const env = { ...process.env, PYTHONUNBUFFERED: '1', ONIONBALANCE_STATUS_SOCKET_LOCATION: '' };
    return { bin, args, env };
  }

  private onLine(line: string): void {
    const parsed = parseObLine(line);
    const level = this.classify.level(parsed);
    if (level === 'warn') this.log.warn(`onionbalance: ${parsed.message}`);
    else this.log.debug(`onionbalance: ${parsed.message}`);
    const intros = introsFrom(parsed.message);
    if (intros) this.lastInstances = intros.instances;
    const up = uploadedDescriptor(parsed.message);
    if (up && normalizeOnion(up.onion) === normalizeOnion(this.o.masterOnion)) {
      this.emit('uploaded', { descriptor: up.descriptor, at: Date.now(), instances: this.lastInstances });
    }
  }
}

/** onionbalance on PATH, else where Debian puts it (/usr/sbin, often not on a user's PATH); undefined if neither. */
export function findOnionbalance(): string | undefined {
  const onPath = (process.env.PATH ?? '').split(':').find((d) => d !== '' && existsSync(join(d, 'onionbalance')));
  if (onPath) return join(onPath, 'onionbalance');
  return existsSync(DEBIAN_BIN) ? DEBIAN_BIN : undefined;
}

/** Whether `bin` (a path, or a name looked up on PATH) is an existing file: tests skip without onionbalance. */
export function onionbalanceAvailable(bin = 'onionbalance'): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, bin)));
}
