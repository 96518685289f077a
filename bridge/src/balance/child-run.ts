// One spawned child process: its output as lines (kept for readiness checks), its exit, and ending it
// (SIGTERM, then SIGKILL). supervised-process.ts decides when to start and restart them.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface SpawnSpec {
  bin: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The running process, as readiness checks see it. */
export interface RunHandle {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the first output line (already printed or still to come) that `test` accepts. */
  waitForLine(test: (line: string) => boolean, signal: AbortSignal): Promise<string>;
}

export interface ChildRun extends RunHandle {
  /** Resolves once the process is gone and its output read. */
  exited: Promise<ExitStatus>;
  hasExited: boolean;
  /** Set before we end it ourselves, so its exit is not taken for a crash. */
  expected: boolean;
  /** Set when it could not be started at all (ENOENT, EACCES). */
  spawnError: Error | undefined;
  /** Resolves once it runs; rejects with the spawn error. */
  spawned: Promise<void>;
  /** Stop keeping lines for waitForLine (once it is ready). */
  stopCollecting(): void;
}

const SETPRIV = '/usr/bin/setpriv';
const MAX_KEPT_LINES = 1000;

/**
 * Spawns `spec`. With `dieWithParent`, through util-linux's `setpriv --pdeathsig SIGKILL`, which then execs
 * the program (so the pid is the program's own): the child dies with this process even on SIGKILL, where
 * no 'exit' handler runs.
 */
export function spawnChild(spec: SpawnSpec, opts: { dieWithParent?: boolean; onLine?: (line: string, stream: 'stdout' | 'stderr') => void }): ChildRun {
  // Only for a program that is there: else setpriv would fail (exit 127) where spawn says ENOENT itself.
  const viaSetpriv = opts.dieWithParent && existsSync(SETPRIV) && findable(spec.bin);
  const [bin, args] = viaSetpriv ? [SETPRIV, ['--pdeathsig', 'SIGKILL', spec.bin, ...spec.args]] : [spec.bin, [...spec.args]];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: spec.env ?? process.env,
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
    // Own process group: a Ctrl-C meant for the bridge must not reach the child behind our back (it would
    // look like a crash); the supervisor ends it in order.
    detached: true,
  });
  let lines: string[] | undefined = [];
  const listeners = new Set<(line: string) => void>();
  const run: ChildRun = {
    child,
    pid: child.pid ?? -1,
    hasExited: false,
    expected: false,
    spawnError: undefined,
    exited: new Promise<ExitStatus>((resolve) => {
      // 'close' rather than 'exit': by then the last output lines have been read.
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
      child.once('error', (e) => {
        run.spawnError = e;
        // A process that never started emits no 'close'.
        if (child.pid === undefined) resolve({ code: null, signal: null });
      });
    }),
    spawned: new Promise<void>((resolve, reject) => {
      if (child.pid !== undefined) resolve();
      child.once('error', reject);
    }),
    waitForLine: (test, signal) => waitForLine(lines ?? [], listeners, test, signal),
    stopCollecting: () => (lines = undefined),
  };
  run.spawned.catch(() => {});
  void run.exited.then(() => (run.hasExited = true));
  for (const stream of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[stream] }).on('line', (line) => {
      // Bounded, so a chatty child that never becomes ready cannot grow it without end.
      if (lines && lines.length < MAX_KEPT_LINES) lines.push(line);
      for (const l of listeners) l(line);
      opts.onLine?.(line, stream);
    });
  }
  return run;
}

/** SIGTERM, then SIGKILL after `graceMs` (calling `onKill`); resolves once the process is gone. */
export async function endChild(run: ChildRun, graceMs: number, onKill?: () => void): Promise<void> {
  if (run.child.pid === undefined) return;
  if (run.hasExited || run.child.exitCode !== null || run.child.signalCode !== null) {
    await run.exited;
    return;
  }
  run.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onKill?.();
      run.child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([run.exited, killed]);
  clearTimeout(timer);
  await run.exited;
}

/** A path that exists, or a name found on PATH. */
function findable(bin: string): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, bin)));
}

function waitForLine(
  seen: readonly string[],
  listeners: Set<(line: string) => void>,
  test: (line: string) => boolean,
  signal: AbortSignal,
): Promise<string> {
  const already = seen.find(test);
  if (already !== undefined) return Promise.resolve(already);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onLine = (line: string): void => {
      if (!test(line)) return;
      done();
      resolve(line);
    };
    const onAbort = (): void => {
      done();
      reject(signal.reason);
    };
    const done = (): void => {
      listeners.delete(onLine);
      signal.removeEventListener('abort', onAbort);
    };
    listeners.add(onLine);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
