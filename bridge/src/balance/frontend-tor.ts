// The frontend's own tor: joins whatever network TOR_EXTRA_CONFIG says (the real Tor network when it says
// nothing), serves no onion itself, and gives onionbalance a control port. We hold an owning control
// connection (TAKEOWNERSHIP) to follow its bootstrap; it exits when that connection or this process goes.
// Restarted with backoff when it dies (supervised-process.ts); each new tor has a new control port, which
// onionbalance must be started again with.
import { EventEmitter } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { Health } from '../service.js';
import { TorControl } from '../tor/control.js';
import { type BootstrapPhase, parseBootstrap } from '../tor/events.js';
import { renderBalanceTorrc } from './balance-torrc.js';
import { ensurePrivateDir } from './master-key.js';
import { SupervisedProcess } from './supervised-process.js';

export interface FrontendTorOptions {
  torBin: string;
  /** Holds torrc and data/ (TOR_DIR/balance-tor). */
  dir: string;
  /** TOR_EXTRA_CONFIG: torrc lines appended verbatim, re-read on every (re)start. */
  extraConfigFile?: string;
  log: Logger;
  /** How long tor may take to open and hand over its control port; default 30 s. */
  startTimeoutMs?: number;
  stopGraceMs?: number;
  backoff?: { initialMs?: number; maxMs?: number; stableMs?: number };
}

export interface FrontendTorHealth extends Health {
  bootstrapped: boolean;
  progress: number;
  controlPort: number | undefined;
  pid: number | undefined;
  restarts: number;
}

/** What BalanceService needs of its tor (a fake in the unit tests). */
export interface FrontendTorPort {
  start(signal?: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /** Bootstrapped to 100 % (this run). */
  readonly bootstrapped: boolean;
  /** The running tor's control port, for onionbalance; undefined while tor is down. */
  readonly controlPort: number | undefined;
  health(): FrontendTorHealth;
  on(event: 'bootstrapped' | 'down', listener: () => void): unknown;
}

interface FrontendTorEvents {
  /** This run reached 100 %: onionbalance can start (it reads the consensus at start-up). */
  bootstrapped: [];
  /** The tor died; onionbalance's control connection is gone with it. */
  down: [];
}

export class FrontendTor extends EventEmitter<FrontendTorEvents> implements FrontendTorPort {
  private readonly proc: SupervisedProcess;
  private readonly log: Logger;
  private control: TorControl | undefined;
  private port: number | undefined;
  private phase: BootstrapPhase | undefined;
  /** Set by stop(): the connection and the process going away are then no news. */
  private stopping = false;

  // A plain field, not a parameter property: Node's type stripping (child processes, scripts) rejects those.
  private readonly o: FrontendTorOptions;

  constructor(o: FrontendTorOptions) {
    super();
    this.o = o;
    this.log = o.log.child({ service: 'balance-tor' });
    this.proc = new SupervisedProcess({
      name: 'tor',
      log: this.log,
      command: () => this.prepare(),
      onLine: (line) => this.torLine(line),
      ready: (_run, signal) => this.takeControl(signal),
      readyTimeoutMs: o.startTimeoutMs ?? 30_000,
      stopGraceMs: o.stopGraceMs ?? 5_000,
      ...(o.backoff ? { backoff: o.backoff } : {}),
    });
    this.proc.on('exit', ({ expected }) => {
      this.dropControl();
      if (!expected) this.emit('down');
    });
  }

  private get paths() {
    return {
      data: join(this.o.dir, 'data'),
      torrc: join(this.o.dir, 'torrc'),
      defaults: join(this.o.dir, 'torrc.defaults'),
      portFile: join(this.o.dir, 'control-port'),
      cookie: join(this.o.dir, 'data', 'control_auth_cookie'),
    };
  }

  // From the control connection rather than the process state: the first bootstrap event may come while
  // the start is still being completed. Both are cleared when the tor exits.
  get bootstrapped(): boolean {
    return this.control !== undefined && (this.phase?.progress ?? 0) >= 100;
  }

  get controlPort(): number | undefined {
    return this.control ? this.port : undefined;
  }

  start(signal?: AbortSignal): Promise<void> {
    this.stopping = false;
    return this.proc.start(signal);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.proc.stop();
    this.dropControl();
  }

  health(): FrontendTorHealth {
    const progress = this.phase?.progress ?? 0;
    const running = this.proc.running;
    let detail: string;
    if (running) {
      detail = progress >= 100 ? 'bootstrapped' : `bootstrapping ${progress}%${this.phase?.summary ? ` (${this.phase.summary})` : ''}`;
      if (this.phase?.warning) detail += `; warning: ${this.phase.warning}`;
    } else {
      detail = `tor ${this.proc.status}${this.proc.lastProblem ? `: ${this.proc.lastProblem}` : ''}`;
    }
    return { ok: running && progress >= 100, detail, bootstrapped: this.bootstrapped, progress, controlPort: this.controlPort, pid: this.proc.pid, restarts: this.proc.restarts };
  }

  // ------------------------------------------------------------------------------------------

  /** Writes the torrc for this start (TOR_EXTRA_CONFIG re-read) and says how to run tor. */
  private async prepare(): Promise<{ bin: string; args: string[] }> {
    const p = this.paths;
    let extraConfig: string | undefined;
    if (this.o.extraConfigFile) {
      try {
        extraConfig = await readFile(this.o.extraConfigFile, 'utf8');
      } catch (e) {
        throw new Error(`cannot read the extra tor config ${this.o.extraConfigFile}: ${(e as Error).message}`);
      }
    }
    // The data folder holds tor's keys and the control cookie: ours only.
    await ensurePrivateDir(this.o.dir);
    await mkdir(p.data, { recursive: true, mode: 0o700 });
    await ensurePrivateDir(p.data);
    const torrc = renderBalanceTorrc({
      dataDir: p.data,
      controlPortFile: p.portFile,
      ownerPid: process.pid,
      ...(extraConfig !== undefined ? { extraConfig } : {}),
    });
    await writeFile(p.torrc, torrc, { mode: 0o600 });
    // An empty defaults file: nothing from /etc/tor/torrc may leak into this tor.
    await writeFile(p.defaults, '', { mode: 0o600 });
    // A port file left by an earlier tor would point us at a dead (or foreign) port.
    await rm(p.portFile, { force: true });
    this.phase = undefined;
    return { bin: this.o.torBin, args: ['-f', p.torrc, '--defaults-torrc', p.defaults] };
  }

  /** The readiness check: the control port is up, we own tor, and bootstrap events flow. */
  private async takeControl(signal: AbortSignal): Promise<void> {
    const port = await waitForPortFile(this.paths.portFile, signal);
    const control = await TorControl.connect({ port, signal });
    try {
      await control.authenticate({ cookieFile: this.paths.cookie, signal });
      // From here on tor exits as soon as this connection closes, e.g. if the bridge crashes.
      await control.takeOwnership({ signal });
      control.on('event', (e) => {
        if (e.type === 'STATUS_CLIENT') {
          const phase = parseBootstrap(e);
          if (phase) this.updatePhase(phase);
        }
      });
      control.on('close', (err) => {
        // Lost without tor exiting: tor is unusable to us (and will exit, owning): make it a restart.
        if (err && this.control === control && !this.stopping) {
          this.log.warn('tor control connection lost; restarting tor', { error: err.message });
          this.dropControl();
          this.emit('down');
          void this.proc.restart('control connection lost');
        }
      });
      // Set before events flow, so that a bootstrap event finds tor usable (see bootstrapped).
      this.control = control;
      this.port = port;
      await control.setEvents(['STATUS_CLIENT'], { signal });
      const info = await control.getInfo('status/bootstrap-phase', { signal });
      const phase = parseBootstrap(info['status/bootstrap-phase'] ?? '');
      if (phase) this.updatePhase(phase);
      this.log.info('frontend tor started', { controlPort: port });
    } catch (e) {
      if (this.control === control) this.dropControl();
      await control.close();
      throw e;
    }
  }

  private dropControl(): void {
    const c = this.control;
    this.control = undefined;
    this.port = undefined;
    this.phase = undefined;
    void c?.close().catch(() => {});
  }

  private updatePhase(phase: BootstrapPhase): void {
    const prev = this.phase;
    if (prev && prev.progress === phase.progress && prev.tag === phase.tag && prev.warning === phase.warning) return;
    this.phase = phase;
    if (phase.warning) this.log.warn(`tor bootstrap problem at ${phase.progress}%: ${phase.warning}`, { tag: phase.tag });
    if (phase.progress >= 100 && (prev?.progress ?? 0) < 100) {
      this.log.info('frontend tor bootstrapped');
      this.emit('bootstrapped');
    }
  }

  /** Tor's output goes to the bridge's log; its warnings and errors keep their weight. */
  private torLine(line: string): void {
    // Drop tor's own timestamp ("Nov 28 00:26:37.062 "); the logger adds one.
    const m = /^\w{3} \d{1,2} [\d:.]+ \[(\w+)\] (.*)$/.exec(line);
    const level = m?.[1];
    const msg = m?.[2] ?? line;
    if (level === 'err') this.log.error(`tor: ${msg}`);
    else if (level === 'warn' && !/running Tor as root/.test(msg)) this.log.warn(`tor: ${msg}`);
    else this.log.debug(`tor: ${msg}`);
  }
}

/** Waits for tor's ControlPortWriteToFile (`PORT=127.0.0.1:NNNN`). */
async function waitForPortFile(file: string, signal: AbortSignal): Promise<number> {
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const m = /^PORT=127\.0\.0\.1:(\d+)\s*$/m.exec(text);
    if (m) return Number(m[1]);
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 50));
  }
}
