// Runs the bridge's own tor: writes its torrc, spawns it, takes control of it over the control
// port, tracks bootstrap and descriptor publication, and restarts it if it dies.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { TorControl } from './control.js';
import { type BootstrapPhase, type TorEvent, parseBootstrap } from './events.js';
import { ensureOnionKey } from './onion-key.js';
import { type HiddenServicePortSpec, renderTorrc } from './torrc.js';
import { writeObConfig } from './onionbalance-instance.js';

export interface BootstrapProgress {
  progress: number;
  summary: string;
}

export interface TorServiceOptions {
  torBin: string;
  /** Holds torrc, data/ and hidden_service/ (the onion key: keep this folder to keep the address). */
  torDir: string;
  /** What the onion serves; a function when targets are only known at start (ephemeral ports). */
  ports: readonly HiddenServicePortSpec[] | (() => readonly HiddenServicePortSpec[]);
  /** torrc lines appended verbatim, re-read on every (re)start. */
  extraConfigFile?: string;
  powDefense: boolean;
  introDosDefense: boolean;
  log: Logger;
  progress?: (p: BootstrapProgress) => void;
  socksPort?: number | 'auto' | 0;
  /** How long tor may take to open its control port; default 30 s. */
  startTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL; default 5 s. */
  stopTimeoutMs?: number;
  /** Restart delays: initialMs doubling up to maxMs, reset after stableMs of uptime. */
  backoff?: { initialMs?: number; maxMs?: number; stableMs?: number };
  /** BALANCE_MASTER_ONION: the service is an Onionbalance backend of this master address. */
  onionbalanceMaster?: string;
}

export interface TorHealth extends Health {
  bootstrapped: boolean;
  progress: number;
  published: boolean;
  address: string | undefined;
  restarts: number;
  pid: number | undefined;
}

interface TorServiceEvents {
  bootstrap: [BootstrapPhase];
  /** An HS_DESC UPLOADED for our address: one per HSDir that accepted the descriptor. */
  published: [string];
  /** A tor was started again after an unexpected exit. */
  restart: [{ restarts: number; pid: number }];
  exit: [{ code: number | null; signal: NodeJS.Signals | null; expected: boolean }];
}

/** One tor process and its control connection. */
interface Run {
  child: ChildProcess;
  pid: number;
  control?: TorControl;
  /** Set once the control connection is set up; before that, failures belong to launch(). */
  ready: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited: boolean;
}

const RING = 40;
const ONION = /^[a-z2-7]{56}\.onion$/;

export class TorService extends EventEmitter<TorServiceEvents> implements Service {
  readonly name = 'tor';
  private readonly o: TorServiceOptions;
  private readonly log: Logger;
  private run: Run | undefined;
  private state: 'stopped' | 'starting' | 'running' | 'restarting' | 'stopping' | 'failed' = 'stopped';
  private lastProblem = '';
  private lifecycle = new AbortController();
  private stopping: Promise<void> | undefined;
  private address: string | undefined;
  private phase: BootstrapPhase | undefined;
  private publishedThisRun = false;
  private waiters = new Set<{ resolve: (a: string) => void; reject: (e: unknown) => void }>();
  private restarts = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private readonly ring: string[] = [];
  /** Safety net: a supervisor exiting in any way kills its tor (tor also watches our pid). */
  private readonly onProcessExit = () => {
    try {
      this.run?.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };

  constructor(opts: TorServiceOptions) {
    super();
    this.o = opts;
    this.log = opts.log.child({ service: 'tor' });
  }

  private get paths() {
    const d = this.o.torDir;
    return {
      data: join(d, 'data'),
      hs: join(d, 'hidden_service'),
      torrc: join(d, 'torrc'),
      defaults: join(d, 'torrc.defaults'),
      portFile: join(d, 'control-port'),
      cookie: join(d, 'data', 'control_auth_cookie'),
    };
  }

  /**
   * Makes sure the onion key exists (creating it as tor would) and returns its address, before tor
   * runs: services that must name the address before tor starts (libp2p's /onion3 listen address)
   * call this first. start() then serves the same key.
   */
  async prepareAddress(): Promise<string> {
    await mkdir(this.o.torDir, { recursive: true, mode: 0o700 });
    this.address = await ensureOnionKey(this.paths.hs);
    return this.address;
  }

  /** Starts tor and resolves once its control connection is up (bootstrap continues afterwards). */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'stopped' && this.state !== 'failed') throw new Error(`tor service is ${this.state}`);
    this.state = 'starting';
    this.stopping = undefined;
    this.lifecycle = new AbortController();
    this.failures = 0;
    process.on('exit', this.onProcessExit);
    const sig = signal ? AbortSignal.any([signal, this.lifecycle.signal]) : this.lifecycle.signal;
    try {
      await this.launch(sig);
      this.state = 'running';
      this.armStableTimer();
    } catch (e) {
      process.off('exit', this.onProcessExit);
      this.state = 'failed';
      this.lastProblem = firstLine(e);
      throw e;
    }
  }

  /**
   * Tor's SOCKS listener ("127.0.0.1:PORT") when the service was started with a socksPort, for the
   * bridge's own outgoing connections to peers' onions; undefined otherwise or while tor restarts.
   * (Tor opens no SOCKS listener under DisableNetwork 1.)
   */
  async socksAddress(signal?: AbortSignal): Promise<{ host: string; port: number } | undefined> {
    const control = this.run?.ready ? this.run.control : undefined;
    if (!control) return undefined;
    const info = await control.getInfo('net/listeners/socks', { signal });
    const m = /"?([0-9.]+):(\d+)"?/.exec(info['net/listeners/socks'] ?? '');
    return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
  }

  /** The v3 onion address (56 characters + ".onion"); available once start() resolved. */
  onionAddress(): string {
    if (!this.address) throw new Error('tor service not started: no onion address yet');
    return this.address;
  }

  /** Resolves with the address on the first descriptor upload by the current tor. */
  whenPublished(signal?: AbortSignal): Promise<string> {
    if (this.publishedThisRun && this.address) return Promise.resolve(this.address);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(w);
        reject(signal?.reason);
      };
      const w = {
        resolve: (a: string) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(a);
        },
        reject: (e: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.waiters.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops tor (SIGTERM, SIGKILL after the grace period) and waits for it; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const wasRunning = this.state !== 'stopped' && this.state !== 'failed';
    this.state = 'stopping';
    this.lifecycle.abort(new Error('tor service stopping'));
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    const run = this.run;
    if (run) await this.kill(run);
    await run?.control?.close();
    for (const w of this.waiters) w.reject(new Error('tor service stopped before the onion service was published'));
    this.waiters.clear();
    process.off('exit', this.onProcessExit);
    this.state = 'stopped';
    if (wasRunning) this.log.info('tor stopped');
  }

  health(): TorHealth {
    const progress = this.phase?.progress ?? 0;
    const running = this.state === 'running' && !!this.run?.control && !this.run.control.closed;
    let detail: string;
    if (running) {
      detail = this.publishedThisRun
        ? 'onion service published'
        : progress >= 100
          ? 'bootstrapped, publishing the onion service'
          : `bootstrapping ${progress}%${this.phase?.summary ? ` (${this.phase.summary})` : ''}`;
      if (this.phase?.warning) detail += `; warning: ${this.phase.warning}`;
    } else if (this.state === 'failed' || this.state === 'restarting') {
      detail = `tor ${this.state}: ${this.lastProblem}`;
    } else {
      detail = `tor ${this.state}`;
    }
    return {
      ok: running,
      detail,
      bootstrapped: progress >= 100,
      progress,
      published: this.publishedThisRun,
      address: this.address,
      restarts: this.restarts,
      pid: this.run && !this.run.hasExited ? this.run.pid : undefined,
    };
  }

  // ------------------------------------------------------------------------------------------

  /** Spawns one tor and sets up its control connection; on failure leaves no process behind. */
  private async launch(signal: AbortSignal): Promise<void> {
    const p = this.paths;
    const extraConfig = await this.readExtraConfig();
    // Tor refuses a HiddenServiceDir readable by others, and the data dir holds keys: 0700.
    for (const dir of [this.o.torDir, p.data, p.hs]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
    // A backend of an Onionbalance master: tor refuses the instance option without ob_config.
    if (this.o.onionbalanceMaster) await writeObConfig(p.hs, this.o.onionbalanceMaster);
    const torrc = renderTorrc({
      ...(this.o.onionbalanceMaster ? { onionbalanceInstance: true } : {}),
      dataDir: p.data,
      hiddenServiceDir: p.hs,
      controlPortFile: p.portFile,
      ownerPid: process.pid,
      ports: typeof this.o.ports === 'function' ? this.o.ports() : this.o.ports,
      powDefense: this.o.powDefense,
      introDosDefense: this.o.introDosDefense,
      ...(this.o.socksPort !== undefined ? { socksPort: this.o.socksPort } : {}),
      ...(extraConfig !== undefined ? { extraConfig } : {}),
    });
    await writeFile(p.torrc, torrc, { mode: 0o600 });
    // An empty defaults file: nothing from /etc/tor/torrc may leak into our tor.
    await writeFile(p.defaults, '', { mode: 0o600 });
    // A port file left by an earlier tor would point us at a dead (or foreign) port.
    await rm(p.portFile, { force: true });
    signal.throwIfAborted();

    this.phase = undefined;
    this.publishedThisRun = false;
    this.ring.length = 0;
    const child = spawn(this.o.torBin, ['-f', p.torrc, '--defaults-torrc', p.defaults], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: a Ctrl-C meant for the supervisor must not kill tor behind our back
      // (it would look like a crash). Our stop(), TAKEOWNERSHIP and the owner pid end it.
      detached: true,
    });
    const died = new AbortController();
    let spawnError: Error | undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      // 'close' rather than 'exit': by then tor's last log lines have been read.
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
    });
    child.once('error', (e) => {
      spawnError = e;
      died.abort(e);
    });
    const run: Run = { child, pid: child.pid ?? -1, ready: false, exited, hasExited: false };
    this.run = run;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (l) => this.torLine(l));
    }
    void exited.then((x) => {
      run.hasExited = true;
      died.abort(new Error(`tor exited (${x.signal ?? `code ${x.code}`})`));
      this.onExit(run, x);
    });

    const timeoutMs = this.o.startTimeoutMs ?? 30_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const sig = AbortSignal.any([signal, died.signal, timeout]);
    try {
      if (spawnError) throw spawnError;
      const port = await waitForPortFile(p.portFile, sig);
      const address = await this.readAddress(sig);
      if (this.address && this.address !== address) {
        this.log.warn('the onion address changed: the hidden_service key was replaced', { was: this.address, now: address });
      }
      this.address = address;
      const control = await TorControl.connect({ port, signal: sig });
      run.control = control;
      await control.authenticate({ cookieFile: p.cookie, signal: sig });
      // From here on tor exits as soon as this connection closes, e.g. if we crash.
      await control.takeOwnership({ signal: sig });
      control.on('event', (e) => this.onEvent(e));
      control.on('close', (err) => {
        if (err && run.ready && !run.hasExited && this.state === 'running') {
          this.log.warn('tor control connection lost; restarting tor', { error: err.message });
          run.child.kill('SIGTERM');
        }
      });
      await control.setEvents(['STATUS_CLIENT', 'HS_DESC'], { signal: sig });
      const info = await control.getInfo('status/bootstrap-phase', { signal: sig });
      const phase = parseBootstrap(info['status/bootstrap-phase'] ?? '');
      if (phase) this.updatePhase(phase);
      await this.secureKey();
      run.ready = true;
      this.log.info('tor started', { pid: run.pid, address: this.address });
    } catch (e) {
      await this.kill(run);
      await run.control?.close();
      throw this.startError(e, { signal, died: died.signal, timeout, timeoutMs, spawnError });
    }
  }

  /** A start failure as one clear message, with tor's last log lines when they explain it. */
  private startError(e: unknown, c: { signal: AbortSignal; died: AbortSignal; timeout: AbortSignal; timeoutMs: number; spawnError?: Error }): Error {
    // stop() or the caller gave up: that is the reason, even though tor was killed as a result.
    if (c.signal.aborted) return c.signal.reason instanceof Error ? c.signal.reason : new Error('tor start aborted');
    const tail = this.ring.slice(-10).join('\n');
    let why: string;
    if (c.spawnError) why = `cannot run ${this.o.torBin}: ${c.spawnError.message}`;
    else if (c.died.aborted) why = `tor exited during startup (${(c.died.reason as Error).message.replace(/^tor exited \((.*)\)$/, '$1')})`;
    else if (c.timeout.aborted) why = `tor did not become ready within ${c.timeoutMs} ms`;
    else why = `tor start failed: ${(e as Error).message}`;
    // The first line says what went wrong (also used for health); tor's own lines follow.
    const hint = this.lastComplaint();
    const first = hint ? `${why}: ${hint}` : why;
    return new Error(tail ? `${first}\ntor's last log lines:\n${tail}` : first, { cause: e });
  }

  /** Tor's last warning (or error) line: usually the reason it failed, e.g. "Unknown option 'X'". */
  private lastComplaint(): string | undefined {
    const parse = (l: string) => /\[(warn|err)\] (.*)$/.exec(l);
    // Tor warns about running as root on every start; that is never why it failed.
    const lines = this.ring
      .map(parse)
      .filter((m): m is RegExpExecArray => m !== null && !/running Tor as root/.test(m[2] ?? ''));
    // "Reading config failed--see warnings above." says less than the warning before it.
    const m = lines.findLast((x) => x[1] === 'warn') ?? lines.at(-1);
    return m?.[2]?.trim();
  }

  private onExit(run: Run, x: { code: number | null; signal: NodeJS.Signals | null }): void {
    const expected = !run.ready || this.state === 'stopping' || this.state === 'stopped';
    this.emit('exit', { ...x, expected });
    if (expected || run !== this.run) return;
    clearTimeout(this.stableTimer);
    this.lastProblem = `exited (${x.signal ?? `code ${x.code}`})`;
    this.log.warn('tor exited unexpectedly; restarting', { ...x, lastLines: this.ring.slice(-5) });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const b = this.o.backoff ?? {};
    const delay = Math.min((b.initialMs ?? 500) * 2 ** this.failures, b.maxMs ?? 30_000);
    this.failures++;
    this.state = 'restarting';
    this.restartTimer = setTimeout(() => void this.restart(), delay);
    this.log.info(`restarting tor in ${delay} ms`, { attempt: this.failures });
  }

  private async restart(): Promise<void> {
    if (this.lifecycle.signal.aborted) return;
    this.restarts++;
    try {
      await this.launch(this.lifecycle.signal);
    } catch (e) {
      if (this.lifecycle.signal.aborted) return;
      this.lastProblem = firstLine(e);
      this.log.error('tor restart failed', { error: (e as Error).message });
      this.scheduleRestart();
      return;
    }
    this.state = 'running';
    this.armStableTimer();
    this.emit('restart', { restarts: this.restarts, pid: this.run?.pid ?? -1 });
  }

  /** Only a tor that stayed up for a while resets the backoff, so a crash loop slows down. */
  private armStableTimer(): void {
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => (this.failures = 0), this.o.backoff?.stableMs ?? 60_000);
    this.stableTimer.unref();
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  private async kill(run: Run): Promise<void> {
    if (run.hasExited || run.child.exitCode !== null || run.child.pid === undefined) {
      if (run.child.pid !== undefined) await run.exited;
      return;
    }
    run.child.kill('SIGTERM');
    const grace = this.o.stopTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn(`tor did not exit within ${grace} ms of SIGTERM; sending SIGKILL`, { pid: run.pid });
        run.child.kill('SIGKILL');
        resolve();
      }, grace);
    });
    await Promise.race([run.exited, killed]);
    clearTimeout(timer);
    await run.exited;
  }

  private onEvent(e: TorEvent): void {
    if (e.type === 'STATUS_CLIENT') {
      const phase = parseBootstrap(e);
      if (phase) this.updatePhase(phase);
    } else if (e.type === 'HS_DESC' && e.action === 'UPLOADED' && this.address === `${e.address}.onion`) {
      // One event per HSDir: the first says "published", the rest are detail.
      if (!this.publishedThisRun) this.log.info('onion service descriptor published', { hsDir: e.hsDir });
      else this.log.debug('onion service descriptor uploaded', { hsDir: e.hsDir });
      this.publishedThisRun = true;
      this.emit('published', this.address);
      for (const w of this.waiters) w.resolve(this.address);
      this.waiters.clear();
    }
  }

  private updatePhase(phase: BootstrapPhase): void {
    const prev = this.phase;
    if (prev && prev.progress === phase.progress && prev.tag === phase.tag && prev.warning === phase.warning) return;
    this.phase = phase;
    if (phase.warning) this.log.warn(`tor bootstrap problem at ${phase.progress}%: ${phase.warning}`, { tag: phase.tag });
    this.emit('bootstrap', phase);
    try {
      this.o.progress?.({ progress: phase.progress, summary: phase.summary });
    } catch (err) {
      this.log.warn('bootstrap progress callback failed', { error: (err as Error).message });
    }
  }

  /** Tor's output goes to our log; its warnings and errors keep their weight. */
  private torLine(line: string): void {
    this.ring.push(line);
    if (this.ring.length > RING) this.ring.shift();
    // Drop tor's own timestamp ("Nov 28 00:26:37.062 "); the logger adds one.
    const m = /^\w{3} \d{1,2} [\d:.]+ \[(\w+)\] (.*)$/.exec(line);
    const level = m?.[1];
    const msg = m?.[2] ?? line;
    if (level === 'err') this.log.error(`tor: ${msg}`);
    else if (level === 'warn') this.log.warn(`tor: ${msg}`);
    else this.log.debug(`tor: ${msg}`);
  }

  private async readExtraConfig(): Promise<string | undefined> {
    const file = this.o.extraConfigFile;
    if (!file) return undefined;
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the extra tor config ${file}: ${(e as Error).message}`);
    }
  }

  /** Tor writes hostname while loading its config, before it opens the control port. */
  private async readAddress(signal: AbortSignal): Promise<string> {
    const file = join(this.paths.hs, 'hostname');
    for (;;) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const addr = text.trim();
      if (ONION.test(addr)) return addr;
      await sleep(50, signal);
    }
  }

  /** Tor creates the key 0600 in a 0700 folder; make sure nobody loosened that. */
  private async secureKey(): Promise<void> {
    const key = join(this.paths.hs, 'hs_ed25519_secret_key');
    for (const [path, mode] of [[this.paths.hs, 0o700], [key, 0o600]] as const) {
      const st = await stat(path);
      if ((st.mode & 0o777) !== mode) {
        this.log.warn(`fixing permissions of ${path}`, { was: (st.mode & 0o777).toString(8) });
        await chmod(path, mode);
      }
    }
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0] ?? '';
}

/** Waits for tor's ControlPortWriteToFile (`PORT=127.0.0.1:NNNN`). */
async function waitForPortFile(file: string, signal: AbortSignal): Promise<number> {
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const m = /^PORT=127\.0\.0\.1:(\d+)\s*$/m.exec(text);
    if (m) return Number(m[1]);
    await sleep(50, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
