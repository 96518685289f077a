// One child process kept running: spawned, checked for readiness, restarted with backoff when it exits
// on its own, and ended (SIGTERM, then SIGKILL) on stop. The frontend runs two of these, its tor and
// Debian's onionbalance. TorService does the same for the bridge's tor, but it is welded to the bridge's
// hidden service (its torrc, its key, its descriptor events), so the frontend, which must have no hidden
// service of its own, cannot use it; this is the part both need, without the tor specifics.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log/logger.js';
import { type ChildRun, type RunHandle, type SpawnSpec, endChild, spawnChild } from './child-run.js';

export type { RunHandle, SpawnSpec } from './child-run.js';

export interface SupervisedProcessOptions {
  /** For log lines and errors: "tor", "onionbalance". */
  name: string;
  log: Logger;
  /** What to run. Asked before every (re)start, so it can use the current state (tor's new control port). */
  command: () => SpawnSpec | Promise<SpawnSpec>;
  /** Every output line of the child, for the caller's log and parsing. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Resolves once the new process is usable; if it rejects, the process is killed and the start failed. */
  ready?: (run: RunHandle, signal: AbortSignal) => Promise<void>;
  /** How long `ready` may take; default 60 s. */
  readyTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL; default 5 s. */
  stopGraceMs?: number;
  /** How loudly to log a SIGKILL after the grace: warn (default), or debug for a child where that is routine. */
  sigkillLogLevel?: 'warn' | 'debug';
  /** Restart delays: initialMs doubling up to maxMs, reset after stableMs of uptime. */
  backoff?: { initialMs?: number; maxMs?: number; stableMs?: number };
  /**
   * Kill the child when this process dies, even by SIGKILL (where no 'exit' handler runs): started through
   * util-linux's `setpriv --pdeathsig SIGKILL`. For children that do not watch their parent (onionbalance);
   * tor has __OwningControllerProcess instead.
   */
  dieWithParent?: boolean;
}

interface SupervisedProcessEvents {
  /** A process passed its readiness check. */
  ready: [{ pid: number; restarts: number }];
  /** A process ended; `expected` when we ended it (stop, restart) or it never became ready. */
  exit: [{ code: number | null; signal: NodeJS.Signals | null; expected: boolean }];
}

type State = 'stopped' | 'starting' | 'running' | 'restarting' | 'stopping' | 'failed';

const RING = 30;

export class SupervisedProcess extends EventEmitter<SupervisedProcessEvents> {
  private current: ChildRun | undefined;
  private state: State = 'stopped';
  private lifecycle = new AbortController();
  private queue: Promise<void> = Promise.resolve();
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private readonly ring: string[] = [];
  /** Times a process was started again after the first one. */
  restarts = 0;
  private launches = 0;
  /** Why the last start failed or the last process died; '' when nothing went wrong. */
  lastProblem = '';
  /** Safety net: whatever way this process exits, the child goes too. */
  private readonly onProcessExit = (): void => {
    try {
      this.current?.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };

  // A plain field, not a parameter property: Node's type stripping (child processes, scripts) rejects those.
  private readonly o: SupervisedProcessOptions;

  constructor(o: SupervisedProcessOptions) {
    super();
    this.o = o;
  }

  /** A process is up and passed its readiness check. */
  get running(): boolean {
    return this.state === 'running' && !!this.current && !this.current.hasExited;
  }

  get pid(): number | undefined {
    return this.current && !this.current.hasExited ? this.current.pid : undefined;
  }

  get status(): State {
    return this.state;
  }

  /** Starts the first process; rejects (leaving nothing running and no retry) if it does not become ready. */
  start(signal?: AbortSignal): Promise<void> {
    return this.serial(async () => {
      if (this.state !== 'stopped' && this.state !== 'failed') throw new Error(`${this.o.name} is ${this.state}`);
      this.begin();
      this.state = 'starting';
      const sig = signal ? AbortSignal.any([signal, this.lifecycle.signal]) : this.lifecycle.signal;
      try {
        await this.launch(sig);
      } catch (e) {
        this.end();
        this.state = 'failed';
        this.lastProblem = firstLine(e);
        throw e;
      }
      this.state = 'running';
      this.armStableTimer();
    });
  }

  /**
   * (Re)starts now, with a fresh `command()`: ends the current process if there is one, cancels a pending
   * retry, and starts another. A start that fails is retried with backoff rather than thrown, so this also
   * begins supervision of a process that is not running yet.
   */
  restart(reason: string): Promise<void> {
    return this.serial(async () => {
      if (this.state === 'stopping') return;
      if (this.state === 'stopped' || this.state === 'failed') this.begin();
      const old = this.current;
      if (old && !old.hasExited) {
        this.o.log.debug(`${this.o.name}: restarting (${reason})`, { pid: old.pid });
        old.expected = true;
        await this.kill(old);
      }
      // After the kill: a crash noticed meanwhile may have scheduled a retry, which this start replaces.
      clearTimeout(this.retryTimer);
      await this.tryLaunch();
    });
  }

  /** Ends the process (SIGTERM, SIGKILL after the grace period) and any retry; resolves once it is gone. */
  stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return this.queue;
    this.state = 'stopping';
    // Aborted first, so that a start in progress gives up at once instead of holding the queue.
    this.lifecycle.abort(new Error(`${this.o.name} stopping`));
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    return this.serial(async () => {
      const run = this.current;
      if (run) {
        run.expected = true;
        await this.kill(run);
      }
      this.end();
      this.state = 'stopped';
    });
  }

  /** The child's last output lines (for error messages). */
  lastLines(n = 10): string[] {
    return this.ring.slice(-n);
  }

  // ------------------------------------------------------------------------------------------

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private begin(): void {
    this.lifecycle = new AbortController();
    this.failures = 0;
    this.launches = 0;
    process.on('exit', this.onProcessExit);
  }

  private end(): void {
    process.off('exit', this.onProcessExit);
  }

  /** A start whose failure is retried with backoff (restart() and crash recovery). */
  private async tryLaunch(): Promise<void> {
    const signal = this.lifecycle.signal;
    if (signal.aborted) return;
    this.state = 'starting';
    try {
      await this.launch(signal);
    } catch (e) {
      if (signal.aborted) return;
      this.lastProblem = firstLine(e);
      this.o.log.warn(`${this.o.name} did not start: ${(e as Error).message}`);
      this.scheduleRetry();
      return;
    }
    if (signal.aborted) return;
    this.state = 'running';
    this.armStableTimer();
  }

  private async launch(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const spec = await this.o.command();
    signal.throwIfAborted();
    this.ring.length = 0;
    const run = spawnChild(spec, {
      ...(this.o.dieWithParent ? { dieWithParent: true } : {}),
      onLine: (line, stream) => {
        this.ring.push(line);
        if (this.ring.length > RING) this.ring.shift();
        this.o.onLine?.(line, stream);
      },
    });
    this.current = run;
    const died = new AbortController();
    void run.exited.then((x) => {
      died.abort(new Error(`exited (${x.signal ?? `code ${x.code}`})`));
      this.onExit(run, x);
    });

    const timeoutMs = this.o.readyTimeoutMs ?? 60_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const sig = AbortSignal.any([signal, died.signal, timeout]);
    try {
      await run.spawned;
      if (this.o.ready) await this.o.ready(run, sig);
      sig.throwIfAborted();
    } catch (e) {
      run.expected = true;
      // The reason as it stands now: the kill below ends the process too, which is not why it failed.
      let why: string;
      if (run.spawnError) why = `cannot run ${spec.bin}: ${run.spawnError.message}`;
      else if (died.signal.aborted) why = `${(died.signal.reason as Error).message} while starting`;
      else if (timeout.aborted) why = `not ready within ${timeoutMs} ms`;
      else why = (e as Error).message;
      await this.kill(run);
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(`${this.o.name} start aborted`);
      const tail = this.ring.slice(-10).join('\n');
      throw new Error(tail ? `${this.o.name}: ${why}\nits last output:\n${tail}` : `${this.o.name}: ${why}`, { cause: e });
    }
    run.stopCollecting();
    if (this.launches++ > 0) this.restarts++;
    this.lastProblem = '';
    this.o.log.debug(`${this.o.name} ready`, { pid: run.pid });
    this.emit('ready', { pid: run.pid, restarts: this.restarts });
  }

  private onExit(run: ChildRun, x: { code: number | null; signal: NodeJS.Signals | null }): void {
    const expected = run.expected || this.state === 'stopping' || this.state === 'stopped';
    this.emit('exit', { ...x, expected });
    // Exits during a start are the start's failure, reported (and retried) there.
    if (expected || run !== this.current || this.state !== 'running') return;
    clearTimeout(this.stableTimer);
    this.lastProblem = `exited (${x.signal ?? `code ${x.code}`})`;
    this.o.log.warn(`${this.o.name} exited unexpectedly; restarting`, { ...x, lastLines: this.ring.slice(-5) });
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const b = this.o.backoff ?? {};
    const delay = Math.min((b.initialMs ?? 500) * 2 ** this.failures, b.maxMs ?? 30_000);
    this.failures++;
    this.state = 'restarting';
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      // A restart() may have started one meanwhile: never two at once.
      void this.serial(async () => (this.current && !this.current.hasExited ? undefined : this.tryLaunch()));
    }, delay);
    this.o.log.info(`restarting ${this.o.name} in ${delay} ms`, { attempt: this.failures });
  }

  /** Only a process that stayed up for a while resets the backoff, so a crash loop slows down. */
  private armStableTimer(): void {
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => (this.failures = 0), this.o.backoff?.stableMs ?? 60_000);
    this.stableTimer.unref();
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  private kill(run: ChildRun): Promise<void> {
    const grace = this.o.stopGraceMs ?? 5000;
    return endChild(run, grace, () =>
      this.o.log.log(this.o.sigkillLogLevel ?? 'warn', `${this.o.name} did not exit within ${grace} ms of SIGTERM; sending SIGKILL`, { pid: run.pid }),
    );
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0] ?? '';
}
