// Process handling for the devnet's daemons (the private network's tors, onion-service tors, onionbalance):
// spawn with stdout and stderr going straight to a log file, stop with SIGTERM then SIGKILL, read a log's
// tail for error messages. Split out of tornet.ts; used by tornet.ts, onion-service-tor.ts and onionbalance.ts.
//
// global-setup.ts loads tornet.ts (and so this file) with Node's type stripping: erasable syntax only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const LOG_TAIL_LINES = 25;
const STOP_GRACE_MS = 3_000;

export interface LoggedProcess {
  name: string;
  logFile: string;
  child: ChildProcess;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

export interface TorProcess extends LoggedProcess {
  dataDir: string;
}

/** Run a short command (no shell); reject with the end of its output when it fails. */
export function execFileP(
  file: string,
  args: string[],
  opts: { cwd?: string; input?: string; signal?: AbortSignal },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd: opts.cwd, signal: opts.signal, timeout: 30_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const out = `${stdout}${stderr}`.trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
          reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}${out ? `\n${out}` : ''}`, { cause: err }));
        } else resolve({ stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

export function tail(text: string, lines = LOG_TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function readLogTail(file: string, lines = LOG_TAIL_LINES): Promise<string> {
  try {
    return tail(await readFile(file, 'utf8'), lines);
  } catch {
    return '(no log)';
  }
}

export async function appendNote(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, `\n[devnet] ${text}\n`, { flag: 'a' });
  } catch {
    /* best effort */
  }
}

/** Spawn `bin args`, stdout and stderr appended to `logFile` (a file, not a pipe: nothing to drain). */
export function spawnLogged(
  name: string,
  bin: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): LoggedProcess {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', fd, fd], ...(env ? { env } : {}) });
  } finally {
    closeSync(fd);
  }
  const proc: LoggedProcess = { name, logFile, child, exit: undefined, exited: Promise.resolve() };
  proc.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exit = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      // ENOENT and friends: no 'exit' follows.
      proc.exit = { code: -1, signal: null };
      void appendNote(logFile, `spawn error: ${err.message}`);
      resolve();
    });
  });
  return proc;
}

/** How a process ended, for error messages. */
export function describeExit(p: LoggedProcess): string {
  if (!p.exit) return 'running';
  return p.exit.signal ? `signal ${p.exit.signal}` : `code ${p.exit.code}`;
}

/** Write the torrc and start one tor, stdout and stderr going straight to DATADIR/tor.log. */
export async function spawnTor(
  torBin: string,
  emptyDefaults: string,
  name: string,
  dataDir: string,
  lines: string[],
): Promise<TorProcess> {
  const torrc = path.join(dataDir, 'torrc');
  const logFile = path.join(dataDir, 'tor.log');
  await writeFile(torrc, `${lines.join('\n')}\n`);
  const proc = spawnLogged(name, torBin, ['--defaults-torrc', emptyDefaults, '-f', torrc], logFile);
  return Object.assign(proc, { dataDir });
}

/** SIGTERM each process still running, SIGKILL after `graceMs`, and wait for all of them to exit. */
export async function stopProcesses(procs: LoggedProcess[], graceMs = STOP_GRACE_MS): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exit || p.child.pid === undefined) return;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!p.exit) p.child.kill('SIGKILL');
      }, graceMs);
      try {
        await p.exited;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
