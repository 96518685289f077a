import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.js';
import type { MeterToPrimary, MeterToWorker, ToPrimary, ToWorker, WorkerConfig } from './worker-protocol.js';

/** The primary's side of metering (MeterHost): the pool connects it to each worker. */
export interface WorkerMeterPort {
  attach(workerId: number, send: (m: MeterToWorker) => void): void;
  receive(workerId: number, m: MeterToPrimary): void;
  detach(workerId: number): void;
}

export interface ProxyWorkerPoolOptions {
  workers: number;
  /** Ports must be explicit: a restarted worker has to come back on the same ones. */
  config: Omit<WorkerConfig, 'onionAddress'>;
  onionAddress: () => string | undefined;
  log: Logger;
  onUpstreamError: (message: string) => void;
  /** Payments: the workers meter visitors against this (config.metered must be set too). */
  meter?: WorkerMeterPort;
  /** How long a worker may take to listen. Default 15 s. */
  startTimeoutMs?: number;
}

/**
 * node:cluster's scheduling. Round-robin: the primary accepts each connection and hands it to the
 * next worker, so a burst of new connections is spread evenly. SCHED_NONE lets the workers accept
 * from the shared socket, and Linux then often wakes the same one. Measured in bench/proxy (see
 * PROXY_WORKERS in config/schema.ts).
 */
const SCHEDULING = cluster.SCHED_RR;

// Built, the worker is proxy-worker.js next to this file. Under jest this file is the TypeScript
// source: the worker then runs proxy-worker.ts with Node's type stripping, and a resolve hook maps
// the './x.js' imports to the './x.ts' files that exist.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = fileURLToPath(new URL(FROM_SOURCE ? './proxy-worker.ts' : './proxy-worker.js', import.meta.url));
const JS_TO_TS_HOOK = `
import { registerHooks } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
registerHooks({
  resolve(specifier, context, next) {
    const parent = context.parentURL;
    if (parent?.startsWith('file:') && parent.endsWith('.ts') && /^\\.\\.?\\//.test(specifier) && specifier.endsWith('.js')) {
      const ts = new URL(specifier.slice(0, -3) + '.ts', parent);
      if (!existsSync(fileURLToPath(new URL(specifier, parent))) && existsSync(fileURLToPath(ts))) return next(ts.href, context);
    }
    return next(specifier, context);
  },
});`;

/** `--import` arguments that let node run this folder's TypeScript source (tests only). */
export function typeScriptSourceArgs(): string[] {
  return ['--import', `data:text/javascript,${encodeURIComponent(JS_TO_TS_HOOK)}`];
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** The worker listens. */
  ready: boolean;
  startedAt: number;
  /** Crashes in a row (a worker that lived 10 s resets it): sets the restart delay. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

const STABLE_MS = 10_000;
const MAX_RESTART_DELAY_MS = 10_000;

/**
 * The proxy's worker processes (PROXY_WORKERS > 1). Each runs the same listeners and forwarder as
 * the single-process gateway; the plain port and the onion listener's port are shared through
 * node:cluster. Workers exit when the primary goes away (IPC disconnect), are restarted when they
 * crash, and are stopped, with a drain, by stop().
 */
export class ProxyWorkerPool {
  private readonly o: ProxyWorkerPoolOptions;
  private readonly slots: Slot[] = [];
  private stopping = false;
  private onion: string | undefined;
  private addressTimer: NodeJS.Timeout | undefined;
  private restartCount = 0;

  constructor(opts: ProxyWorkerPoolOptions) {
    this.o = opts;
    for (let index = 0; index < opts.workers; index++) {
      this.slots.push({ index, worker: undefined, ready: false, startedAt: 0, failures: 0, restartTimer: undefined });
    }
  }

  /** Forks every worker and resolves once all listen; on any failure stops them all and rejects. */
  async start(): Promise<void> {
    this.onion = this.o.onionAddress();
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    } catch (err) {
      await this.stop();
      throw err;
    }
    // The onion address becomes known once tor is up: pass it on for the Onion-Location header.
    this.addressTimer = setInterval(() => this.syncOnionAddress(), 1000);
    this.addressTimer.unref();
  }

  /** The process ids of the workers that are up and listening. */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.ready && s.worker && !s.worker.isDead() && s.worker.process.pid ? [s.worker.process.pid] : []));
  }

  restarts(): number {
    return this.restartCount;
  }

  /** Sends `m` to every worker that is up. */
  broadcast(m: ToWorker): void {
    for (const s of this.slots) this.post(s.worker, m);
  }

  private syncOnionAddress(): void {
    const address = this.o.onionAddress();
    if (address === this.onion) return;
    this.onion = address;
    for (const s of this.slots) this.post(s.worker, { t: 'onion-address', address });
  }

  private post(worker: Worker | undefined, m: ToWorker): void {
    if (!worker || worker.isDead() || !worker.isConnected()) return;
    try {
      worker.send(m);
    } catch {
      /* the channel just closed: its exit handler takes over */
    }
  }

  private spawn(slot: Slot): Promise<void> {
    const { log } = this.o;
    // Takes effect before the first fork of this process only. NODE_CLUSTER_SCHED_POLICY=rr|none overrides.
    if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = SCHEDULING;
    cluster.setupPrimary({
      exec: ENTRY,
      args: [],
      execArgv: FROM_SOURCE ? [...process.execArgv, ...typeScriptSourceArgs()] : process.execArgv,
      silent: false,
    });
    const config: WorkerConfig = { ...this.o.config, onionAddress: this.onion };
    const worker = cluster.fork({ TORPLUS_PROXY_WORKER: JSON.stringify(config) });
    const meter = this.o.meter;
    meter?.attach(worker.id, (m) => this.post(worker, m));
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    const pid = worker.process.pid;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timeoutMs = this.o.startTimeoutMs ?? 15_000;
      const timer = setTimeout(() => {
        reject(new Error(`proxy worker ${pid} did not listen within ${timeoutMs} ms`));
        worker.process.kill('SIGKILL');
      }, timeoutMs);
      worker.on('error', () => {}); // EPIPE and the like on a dying worker's channel; 'exit' follows
      worker.on('message', (m: ToPrimary) => {
        switch (m.t) {
          case 'ready':
            ready = slot.ready = true;
            clearTimeout(timer);
            log.debug(`proxy worker ${pid} listening`, { service: 'gateway' });
            resolve();
            break;
          case 'failed':
            clearTimeout(timer);
            reject(new Error(`proxy worker ${pid}: ${m.message}`));
            break;
          case 'upstream-error':
            this.o.onUpstreamError(m.message);
            break;
          case 'log':
            log.log(m.level, m.message, { service: 'gateway', worker: pid });
            break;
          case 'meter-open':
          case 'meter-count':
          case 'meter-reserve':
          case 'meter-ensure':
          case 'meter-drop':
            try {
              meter?.receive(worker.id, m);
            } catch (err) {
              log.error(`metering a proxy worker's request failed: ${(err as Error).message}`, { service: 'gateway', worker: pid });
            }
            break;
        }
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        meter?.detach(worker.id);
        if (slot.worker === worker) {
          slot.worker = undefined;
          slot.ready = false;
        }
        if (!ready) {
          // Failing to start is the caller's business: start() fails, a restart is retried later.
          reject(new Error(`proxy worker ${pid} exited (${signal ?? code}) before it listened`));
          return;
        }
        if (this.stopping) return;
        log.warn(`proxy worker ${pid} exited (${signal ?? `code ${code}`}); starting another`, { service: 'gateway' });
        this.scheduleRestart(slot);
      });
    });
  }

  private scheduleRestart(slot: Slot): void {
    if (this.stopping) return;
    if (slot.startedAt && Date.now() - slot.startedAt >= STABLE_MS) slot.failures = 0;
    const delay = Math.min(100 * 2 ** slot.failures, MAX_RESTART_DELAY_MS);
    slot.failures++;
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping) return;
      this.restartCount++;
      this.spawn(slot).catch((err: Error) => {
        this.o.log.error(`restarting a proxy worker failed: ${err.message}`, { service: 'gateway' });
        this.scheduleRestart(slot);
      });
    }, delay);
  }

  /** Asks every worker to drain and exit; kills those still there after the drain time plus 2 s. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.addressTimer);
    for (const s of this.slots) clearTimeout(s.restartTimer);
    const drainMs = this.o.config.drainMs;
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const w = slot.worker;
            if (!w || w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), drainMs + 2000);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (w.isConnected()) this.post(w, { t: 'stop', drainMs });
            else w.process.kill('SIGTERM');
          }),
      ),
    );
  }
}
