// The bridge as a real process (`node bridge/dist/cli.js`), for the end-to-end tests, the demo and
// the benchmarks: exactly what a publisher runs, so these exercise the shipped entry point.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** bridge/dist/cli.js, from both bridge/src/devnet (ts-jest) and bridge/dist/devnet (built). */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');

export interface BridgeProcessOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Each line the bridge prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** What to run instead of `node bridge/dist/cli.js start`, e.g. the image's entrypoint script. */
  command?: string[];
}

export interface BridgeProcess {
  child: ChildProcess;
  pid: number;
  lines: string[];
  /** Resolves with the onion address on the `torplus=` line. */
  published(timeoutMs: number): Promise<string>;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<number | string>;
}

export function startBridgeProcess(opts: BridgeProcessOptions): BridgeProcess {
  const [bin, ...args] = opts.command ?? [process.execPath, CLI_PATH, 'start'];
  const child = spawn(bin!, args, {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<(onion: string) => void> = [];
  let onion: string | undefined;
  for (const stream of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[stream]! }).on('line', (line) => {
      lines.push(line);
      opts.onLine?.(line, stream);
      const m = /^torplus=([a-z2-7]{56}\.onion)$/.exec(line);
      if (m && !onion) {
        onion = m[1]!;
        for (const w of waiters.splice(0)) w(onion);
      }
    });
  }
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));

  return {
    child,
    pid: child.pid!,
    lines,
    exited,
    published(timeoutMs) {
      if (onion) return Promise.resolve(onion);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no torplus= line within ${timeoutMs} ms; last output:\n${lines.slice(-15).join('\n')}`)), timeoutMs);
        void exited.then((code) => {
          clearTimeout(t);
          reject(new Error(`the bridge exited (${code}) before publishing; last output:\n${lines.slice(-15).join('\n')}`));
        });
        waiters.push((o) => {
          clearTimeout(t);
          resolve(o);
        });
      });
    },
    async stop(graceMs = 15_000) {
      if (!exitedNow) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export interface CommandResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs `torplus-bridge <args>` (fill, doctor, …) to completion with the bridge's environment. */
export function runBridgeCommand(args: string[], env: Record<string, string>, timeoutMs = 120_000, signal?: AbortSignal): Promise<CommandResult> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // Interrupted like Ctrl-C: the command gets SIGINT and ends what it started.
  signal?.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
  return new Promise((resolve) =>
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? sig ?? -1, stdout, stderr });
    }),
  );
}
