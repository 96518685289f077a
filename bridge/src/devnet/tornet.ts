// A private Tor network on loopback, for the tests, the demo and the benchmarks.
//
// 3 directory authorities, N relays (default 2) and 1 client, all on 127.0.0.1, all with `TestingTorNetwork 1`
// and loopback-only `DirAuthority` lines, so nothing here can ever reach the public Tor network. Every tor is
// started with an empty `--defaults-torrc` (nothing from /etc/tor is read) and `__OwningControllerProcess`, so
// the tors exit by themselves if the process that started them dies, even by SIGKILL.
//
// What makes it reliable (see the "tor" section of the field notes): `UseEntryGuards 0`, the early directory
// fetches, `V3AuthNIntervalsValid 2`, `TestingMinExitFlagThreshold 0`, and a staged start: the client is only
// started once the consensus lists every authority and relay. A client that bootstraps on the first, thin
// consensus can stall for minutes.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, freePorts } from '../util/free-port.js';
import { socksGet, type FetchResult } from './socks-http.js';

export type { FetchResult } from './socks-http.js';

export interface TorNetworkOptions {
  /** Where the tors keep their data. Default: a fresh mkdtemp directory, removed again by stop(). */
  dir?: string;
  /** Default 'tor'. tor-gencert is taken from the same directory if it is there, else from PATH. */
  torBin?: string;
  /** Non-authority relays; default 2. */
  relays?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Every tor exits by itself when this process dies. Default process.pid. */
  ownerPid?: number;
}

export interface TorNetwork {
  dir: string;
  /** The client tor's SocksPort on 127.0.0.1. */
  socksPort: number;
  /**
   * torrc lines another tor adds to join this network: TestingTorNetwork, the DirAuthority lines, the shared
   * Testing and V3Auth lines, UseEntryGuards 0 and so on. No DataDirectory and no ports.
   */
  joinConfig: string;
  /** A file holding joinConfig (TOR_EXTRA_CONFIG for the bridge). */
  joinConfigFile: string;
  pids: number[];
  /** SIGTERM every tor, SIGKILL after 3 s, wait for them to exit. Idempotent. */
  stop(): Promise<void>;
}

const HARD_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 3_000;
const LOG_TAIL_LINES = 25;

interface TorProcess {
  name: string;
  dataDir: string;
  logFile: string;
  child: ChildProcess;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

interface Authority {
  name: string;
  dataDir: string;
  orPort: number;
  dirPort: number;
  v3ident: string;
  fingerprint: string;
}

function execFileP(
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

/** The lines every tor of the network shares (also what an outside tor needs to join it). */
function sharedLines(authorities: Authority[]): string[] {
  return [
    'TestingTorNetwork 1',
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.25',
    'TestingV3AuthInitialVotingInterval 5',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    'V3AuthNIntervalsValid 2',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteHSDir *',
    'TestingDirAuthVoteGuard *',
    'TestingMinExitFlagThreshold 0',
    'UseEntryGuards 0',
    'FetchDirInfoEarly 1',
    'FetchDirInfoExtraEarly 1',
    'Address 127.0.0.1',
    ...authorities.map(
      (a) => `DirAuthority ${a.name} orport=${a.orPort} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`,
    ),
  ];
}

function tail(text: string, lines = LOG_TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function readLogTail(file: string): Promise<string> {
  try {
    return tail(await readFile(file, 'utf8'));
  } catch {
    return '(no log)';
  }
}

/** Write the torrc and start one tor, stdout and stderr going straight to DATADIR/tor.log. */
async function spawnTor(
  torBin: string,
  emptyDefaults: string,
  name: string,
  dataDir: string,
  lines: string[],
): Promise<TorProcess> {
  const torrc = path.join(dataDir, 'torrc');
  const logFile = path.join(dataDir, 'tor.log');
  await writeFile(torrc, `${lines.join('\n')}\n`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(torBin, ['--defaults-torrc', emptyDefaults, '-f', torrc], { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const proc: TorProcess = { name, dataDir, logFile, child, exit: undefined, exited: Promise.resolve() };
  proc.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exit = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      proc.exit = { code: -1, signal: null };
      void appendNote(logFile, `spawn error: ${err.message}`);
      resolve();
    });
  });
  return proc;
}

async function appendNote(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, `\n[tornet] ${text}\n`, { flag: 'a' });
  } catch {
    /* best effort */
  }
}

async function stopProcesses(procs: TorProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exit || p.child.pid === undefined) return;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!p.exit) p.child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      try {
        await p.exited;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

/** GET a path from a DirPort with node:http; undefined on any failure. */
function dirGet(port: number, urlPath: string, timeoutMs = 2_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve(undefined);
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
  });
}

function countRouters(consensus: string | undefined): number {
  if (!consensus) return 0;
  return consensus.split('\n').filter((l) => l.startsWith('r ')).length;
}

/**
 * Start the private network and resolve once the client tor has bootstrapped to 100 %. On any failure, on
 * abort, or after 90 s, stop every tor already started and reject with the tail of the failing tor's log.
 */
export async function startTorNetwork(opts: TorNetworkOptions = {}): Promise<TorNetwork> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const torBin = opts.torBin ?? 'tor';
  const siblingGencert = path.join(path.dirname(torBin), 'tor-gencert');
  const gencertBin = torBin.includes('/') && existsSync(siblingGencert) ? siblingGencert : 'tor-gencert';
  const relayCount = opts.relays ?? 2;
  const ownerPid = opts.ownerPid ?? process.pid;
  const madeDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'torplus-tornet-')));
  if (!madeDir) await mkdir(dir, { recursive: true, mode: 0o700 });
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  // One controller for the hard timeout and the caller's signal; aborting it kills the keygen steps too.
  const ac = new AbortController();
  const hardTimer = setTimeout(
    () => ac.abort(new Error(`private Tor network: not up after ${HARD_TIMEOUT_MS / 1000} s`)),
    HARD_TIMEOUT_MS,
  );
  const onCallerAbort = (): void => ac.abort(new Error('private Tor network: start aborted'));
  if (opts.signal?.aborted) onCallerAbort();
  else opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const abortReason = (): Error => {
    const r: unknown = ac.signal.reason;
    return r instanceof Error ? r : new Error(String(r));
  };
  const checkAbort = (): void => {
    if (ac.signal.aborted) throw abortReason();
  };
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        ac.signal.removeEventListener('abort', done);
        resolve();
      }
      ac.signal.addEventListener('abort', done, { once: true });
    });

  const procs: TorProcess[] = [];
  let stage = 'making authority keys';
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await stopProcesses(procs);
      if (madeDir && process.env.TORPLUS_KEEP_TORNET !== '1') await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  /** Throw if any started tor has exited, with the tail of its log. */
  const checkExits = async (): Promise<void> => {
    for (const p of procs) {
      if (p.exit) {
        const how = p.exit.signal ? `signal ${p.exit.signal}` : `code ${p.exit.code}`;
        throw new Error(`private Tor network: tor "${p.name}" exited (${how}); end of ${p.logFile}:\n${await readLogTail(p.logFile)}`);
      }
    }
  };

  try {
    const emptyDefaults = path.join(dir, 'empty-defaults-torrc');
    await writeFile(emptyDefaults, '');
    const ports = await freePorts(3 * 2 + relayCount * 2);
    const nextPort = (): number => {
      const p = ports.shift();
      if (p === undefined) throw new Error('tornet: ran out of ports');
      return p;
    };

    // 1. Authority keys and fingerprints (execFile, no shell), the three in parallel.
    const authorities: Authority[] = await Promise.all(
      [1, 2, 3].map(async (i): Promise<Authority> => {
        const name = `auth${i}`;
        const dataDir = path.join(dir, name);
        const keysDir = path.join(dataDir, 'keys');
        await mkdir(keysDir, { recursive: true, mode: 0o700 });
        const orPort = nextPort();
        const dirPort = nextPort();
        await execFileP(
          gencertBin,
          ['--create-identity-key', '-m', '12', '-a', `127.0.0.1:${dirPort}`, '--passphrase-fd', '0'],
          { cwd: keysDir, input: '', signal: ac.signal },
        );
        // DisableNetwork 1: this tor only writes its keys and prints the fingerprint.
        await execFileP(
          torBin,
          [
            '--defaults-torrc', emptyDefaults, '-f', emptyDefaults,
            '--DisableNetwork', '1',
            '--list-fingerprint',
            '--orport', '1',
            '--dirserver', 'x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff',
            '--datadirectory', dataDir,
          ],
          { signal: ac.signal },
        );
        const cert = await readFile(path.join(keysDir, 'authority_certificate'), 'utf8');
        const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
        const fpLine = (await readFile(path.join(dataDir, 'fingerprint'), 'utf8')).trim();
        const fingerprint = fpLine.split(/\s+/).slice(1).join('');
        if (!v3ident || !/^[0-9A-F]{40}$/.test(fingerprint)) {
          throw new Error(`tornet: could not read the keys of ${name} (v3ident ${v3ident}, fingerprint "${fpLine}")`);
        }
        return { name, dataDir, orPort, dirPort, v3ident, fingerprint };
      }),
    );
    checkAbort();
    stage = 'starting authorities and relays';
    log(`tornet: authority keys made in ${since()} (${dir})`);

    const shared = sharedLines(authorities);
    const joinConfig = `${shared.join('\n')}\n`;
    assertPrivateTorConfig(joinConfig);
    const joinConfigFile = path.join(dir, 'join.torrc');
    await writeFile(joinConfigFile, joinConfig);

    const common = (name: string, dataDir: string): string[] => [
      `DataDirectory ${dataDir}`,
      `Nickname ${name}`,
      `__OwningControllerProcess ${ownerPid}`,
      'Log notice stdout',
      'SafeLogging 0',
      'ShutdownWaitLength 0',
      'ContactInfo torplus-devnet@localhost',
      ...shared,
    ];

    // 2. Authorities and relays.
    for (const a of authorities) {
      procs.push(
        await spawnTor(torBin, emptyDefaults, a.name, a.dataDir, [
          ...common(a.name, a.dataDir),
          `ORPort 127.0.0.1:${a.orPort}`,
          `DirPort 127.0.0.1:${a.dirPort}`,
          'SocksPort 0',
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          'ExitRelay 1',
          'ExitPolicy accept 127.0.0.0/8:*',
          'ExitPolicyRejectPrivate 0',
        ]),
      );
    }
    for (let i = 1; i <= relayCount; i++) {
      const name = `relay${i}`;
      const dataDir = path.join(dir, name);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      procs.push(
        await spawnTor(torBin, emptyDefaults, name, dataDir, [
          ...common(name, dataDir),
          `ORPort 127.0.0.1:${nextPort()}`,
          `DirPort 127.0.0.1:${nextPort()}`,
          'SocksPort 0',
          'ExitRelay 1',
          'ExitPolicy accept 127.0.0.0/8:*',
          'ExitPolicyRejectPrivate 0',
        ]),
      );
    }
    log(`tornet: ${authorities.length} authorities and ${relayCount} relays started at ${since()}`);
    stage = 'waiting for a consensus that lists every relay';

    // 3. Wait until every authority serves a consensus that lists every authority and relay.
    const expected = authorities.length + relayCount;
    let counts: number[] = [];
    for (;;) {
      await checkExits();
      checkAbort();
      counts = await Promise.all(
        authorities.map(async (a) => countRouters(await dirGet(a.dirPort, '/tor/status-vote/current/consensus-microdesc'))),
      );
      if (counts.every((c) => c >= expected)) break;
      stage = `waiting for a consensus that lists every relay (authorities list ${counts.join('/')} of ${expected})`;
      await sleep(500);
    }
    log(`tornet: consensus lists all ${expected} relays at ${since()}`);

    // 4. The client.
    stage = 'client bootstrap';
    const clientDir = path.join(dir, 'client');
    await mkdir(clientDir, { recursive: true, mode: 0o700 });
    // Taken only now, so that nothing else can grab it during the ~10 s before the client starts.
    const socksPort = await freePort();
    const client = await spawnTor(torBin, emptyDefaults, 'client', clientDir, [
      ...common('client', clientDir),
      `SocksPort 127.0.0.1:${socksPort}`,
    ]);
    procs.push(client);
    for (;;) {
      await checkExits();
      checkAbort();
      const text = await readFile(client.logFile, 'utf8').catch(() => '');
      if (text.includes('Bootstrapped 100%')) break;
      await sleep(200);
    }
    log(`tornet: client bootstrapped at ${since()}, SocksPort 127.0.0.1:${socksPort}`);

    // After start-up, report tors that die on their own.
    for (const p of procs) {
      void p.exited.then(async () => {
        if (!stopping) {
          log(`tornet: tor "${p.name}" exited unexpectedly (${JSON.stringify(p.exit)}):\n${await readLogTail(p.logFile)}`);
        }
      });
    }

    return {
      dir,
      socksPort,
      joinConfig,
      joinConfigFile,
      pids: procs.map((p) => p.child.pid).filter((pid): pid is number => pid !== undefined),
      stop,
    };
  } catch (err) {
    let error = err as Error;
    if (ac.signal.aborted) {
      // A timeout or the caller's abort (the error caught may be a consequence of it, e.g. a killed keygen).
      const suspect = procs.find((p) => p.name === 'client') ?? procs[0];
      const where = suspect ? `; end of ${suspect.logFile}:\n${await readLogTail(suspect.logFile)}` : '';
      error = new Error(`${abortReason().message} (stage: ${stage})${where}`, { cause: err });
    }
    await stop();
    throw error;
  } finally {
    clearTimeout(hardTimer);
    opts.signal?.removeEventListener('abort', onCallerAbort);
  }
}

/**
 * Fetch an onion URL through the client's SocksPort until it answers: one try every ~1 s, each with a short
 * timeout (a fetch can hang until the service's descriptor is uploaded). Resolves with the first HTTP
 * response of any status; rejects after `timeoutMs` with the last error.
 */
export async function waitForOnion(
  url: string,
  socksPort: number,
  opts: { timeoutMs: number; signal?: AbortSignal; tryTimeoutMs?: number; headers?: Record<string, string> },
): Promise<FetchResult> {
  const start = performance.now();
  const tryTimeout = opts.tryTimeoutMs ?? 5_000;
  let lastError: unknown;
  let tries = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new Error(`waitForOnion ${url}: aborted`, { cause: opts.signal.reason });
    const remaining = opts.timeoutMs - (performance.now() - start);
    // A last try squeezed into the final few milliseconds would only replace a useful error with a timeout.
    if (remaining <= 0 || (tries > 0 && remaining < Math.min(tryTimeout, 250))) break;
    const tryStart = performance.now();
    tries++;
    try {
      return await socksGet(url, {
        socksPort,
        timeoutMs: Math.max(1, Math.min(tryTimeout, remaining)),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.headers ? { headers: opts.headers } : {}),
      });
    } catch (err) {
      lastError = err;
    }
    const pause = Math.max(250, 1_000 - (performance.now() - tryStart));
    const left = opts.timeoutMs - (performance.now() - start);
    if (left <= 0) break;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(pause, left));
      function done(): void {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      }
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  }
  const msg = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`waitForOnion ${url}: no answer after ${opts.timeoutMs} ms (${tries} tries); last error: ${msg}`, {
    cause: lastError,
  });
}

/**
 * Throw unless `config` confines a tor to a private loopback network: `TestingTorNetwork 1` with at least one
 * DirAuthority line and every DirAuthority/AlternateDirAuthority on 127.0.0.1, or `DisableNetwork 1`. A tor
 * without such lines would use the public directory authorities.
 */
export function assertPrivateTorConfig(config: string): void {
  const lines = config.split('\n').map((l) => l.trim());
  if (lines.some((l) => /^DisableNetwork\s+1$/i.test(l))) return;
  if (!lines.some((l) => /^TestingTorNetwork\s+1$/i.test(l))) {
    throw new Error('refusing to start tor: the config has neither "TestingTorNetwork 1" nor "DisableNetwork 1"');
  }
  const auths = lines.filter((l) => /^(Alternate)?DirAuthority\s/i.test(l));
  if (auths.length === 0) throw new Error('refusing to start tor: TestingTorNetwork without DirAuthority lines');
  const bad = auths.filter((l) => !/\s127\.0\.0\.1:\d+\s+[0-9A-Fa-f]{40}$/.test(l));
  if (bad.length > 0) throw new Error(`refusing to start tor: non-loopback directory authority: ${bad.join(' | ')}`);
  if (lines.some((l) => /^(UseBridges|Bridge|FallbackDir)\s/i.test(l))) {
    throw new Error('refusing to start tor: Bridge/FallbackDir lines in a private-network config');
  }
}

export interface OnionServiceTorOptions {
  /** The network's joinConfig. */
  joinConfig: string;
  /** The local port the onion service forwards to. */
  targetPort: number;
  /** Default 127.0.0.1. */
  targetHost?: string;
  /** The onion's port; default 80. */
  virtualPort?: number;
  /** DataDirectory; default a fresh mkdtemp directory, removed by stop(). */
  dir?: string;
  torBin?: string;
  ownerPid?: number;
  /** More torrc lines (e.g. HiddenServiceExportCircuitID haproxy, which must follow HiddenServicePort). */
  extraConfig?: string[];
  /** How long to wait for the hostname file; default 15 s. */
  timeoutMs?: number;
}

export interface OnionServiceTor {
  /** `<56 chars>.onion` */
  onion: string;
  dir: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Start one extra tor that joins the network as an onion service (no SocksPort). Resolves as soon as the
 * hostname file exists; the descriptor is uploaded a few seconds later, so reach it with waitForOnion.
 */
export async function startOnionServiceTor(opts: OnionServiceTorOptions): Promise<OnionServiceTor> {
  assertPrivateTorConfig(opts.joinConfig);
  const madeDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'torplus-onion-')));
  if (!madeDir) await mkdir(dir, { recursive: true, mode: 0o700 });
  const emptyDefaults = path.join(dir, 'empty-defaults-torrc');
  await writeFile(emptyDefaults, '');
  const dataDir = path.join(dir, 'data');
  const hsDir = path.join(dir, 'hs');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await mkdir(hsDir, { recursive: true, mode: 0o700 });
  const proc = await spawnTor(opts.torBin ?? 'tor', emptyDefaults, 'onion', dataDir, [
    `DataDirectory ${dataDir}`,
    'Nickname onion',
    `__OwningControllerProcess ${opts.ownerPid ?? process.pid}`,
    'Log notice stdout',
    'SafeLogging 0',
    'SocksPort 0',
    opts.joinConfig.trim(),
    `HiddenServiceDir ${hsDir}`,
    `HiddenServicePort ${opts.virtualPort ?? 80} ${opts.targetHost ?? '127.0.0.1'}:${opts.targetPort}`,
    ...(opts.extraConfig ?? []),
  ]);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await stopProcesses([proc]);
      if (madeDir && process.env.TORPLUS_KEEP_TORNET !== '1') await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  const deadline = performance.now() + (opts.timeoutMs ?? 15_000);
  const hostnameFile = path.join(hsDir, 'hostname');
  try {
    for (;;) {
      if (proc.exit) {
        throw new Error(`onion-service tor exited (${JSON.stringify(proc.exit)}); end of ${proc.logFile}:\n${await readLogTail(proc.logFile)}`);
      }
      const ok = await stat(hostnameFile).then((s) => s.size > 0, () => false);
      if (ok) break;
      if (performance.now() > deadline) {
        throw new Error(`onion-service tor: no ${hostnameFile} after ${opts.timeoutMs ?? 15_000} ms; end of ${proc.logFile}:\n${await readLogTail(proc.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const onion = (await readFile(hostnameFile, 'utf8')).trim();
    if (!/^[a-z2-7]{56}\.onion$/.test(onion)) throw new Error(`onion-service tor: unexpected hostname "${onion}"`);
    return { onion, dir, pid: proc.child.pid ?? -1, logFile: proc.logFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
