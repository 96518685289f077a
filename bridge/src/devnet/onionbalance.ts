// Debian's onionbalance (0.2.2) on the private Tor network: one master onion address in front of several
// backend onion services. Everything lives in one temporary folder: the frontend tor (tor/), the master key
// (master.key), config.yaml and onionbalance.log.
//
// How onionbalance works here: it drives its own tor over the control port, fetches each backend's descriptor
// (HSFETCH), and publishes a master descriptor (HSPOST) listing the backends' introduction points. Backends
// must accept introductions for the master: `HiddenServiceOnionbalanceInstance 1` plus `ob_config`
// (startOnionServiceTor's onionbalanceMaster option; tor/onionbalance-instance.ts).
//
// What the private network must look like (checked here, see checkNetworkShape):
//  - 20 s voting. `--is-testnet` hard-codes chutney's timing (8-minute time periods, 20 s shared-random
//    rounds); at any other interval it blinds the master key for the wrong time period and nobody finds it.
//  - At least 8 HSDirs. Its hash ring wants 2 replicas × 4 distinct HSDirs; with fewer it spins on "Ignoring
//    already added HSDir", never uploads, and then drops every backend as too old.
//  - The frontend tor must have a consensus before onionbalance connects: onionbalance reads it at start-up
//    and exits ("Could not open cached consensus") when there is none. So we wait for its bootstrap.
//
// A dead backend is NOT dropped by onionbalance 0.2.2: the HSDirs keep serving its last descriptor (valid for
// hours), every re-fetch counts as fresh, so its introduction points stay in the master descriptor. Clients
// still get through (an introduction to the dead backend fails and tor tries the next introduction point),
// but removing it takes a health check outside onionbalance and setBackends() (see onionbalance.e2e.test.ts).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { TorControl } from '../tor/control.js';
import { normalizeOnion } from '../tor/onionbalance-instance.js';
import { makeMasterKey, readMasterKey, type MasterKeyFormat } from '../tor/onionbalance-key.js';
import { appendNote, describeExit, readLogTail, spawnLogged, spawnTor, stopProcesses, type LoggedProcess } from './tor-process.js';
import { assertPrivateTorConfig, votingIntervalOf } from './tornet-config.js';

/** What `--is-testnet` assumes (hs_v3/consensus.py). */
export const ONIONBALANCE_VOTING_INTERVAL_SEC = 20;
/** params.HSDIR_N_REPLICAS × params.HSDIR_SPREAD_STORE. */
export const ONIONBALANCE_MIN_HSDIRS = 8;

export interface OnionbalanceOptions {
  /** The private network's joinConfig (tornet's TorNetwork.joinConfig). */
  joinConfig: string;
  /** Backend onion addresses, with or without `.onion`; at least one. */
  backends: readonly string[];
  /** A master key to use (PEM Ed25519, or tor's hs_ed25519_secret_key beside its public key); default: a new one. */
  masterKeyFile?: string;
  /** Default: a fresh mkdtemp folder, removed by stop() (kept with TORPLUS_KEEP_TORNET=1). */
  dir?: string;
  torBin?: string;
  /** Default 'onionbalance'. */
  onionbalanceBin?: string;
  /** onionbalance's -v; default 'info' (a few lines every 10 s). 'debug' grows by gigabytes on small networks. */
  verbosity?: 'debug' | 'info' | 'warning' | 'error';
  /** Refuse a network onionbalance cannot publish on (voting interval ≠ 20 s, fewer than 8 HSDirs); default true. */
  checkNetworkShape?: boolean;
  /** Frontend tor bootstrap plus onionbalance start-up; default 90 s. */
  timeoutMs?: number;
  ownerPid?: number;
  log?: (line: string) => void;
}

export interface Onionbalance {
  /** The master address, `<56 chars>.onion`. */
  onion: string;
  keyFormat: MasterKeyFormat;
  dir: string;
  configFile: string;
  /** onionbalance's own log (every run appended). */
  logFile: string;
  torLogFile: string;
  controlPort: number;
  /** The backends in config.yaml now. */
  readonly backends: string[];
  /** The running onionbalance's pid. */
  readonly pid: number | undefined;
  /** Rewrite config.yaml and restart onionbalance; resolves once it has loaded the new config. */
  setBackends(onions: readonly string[]): Promise<void>;
  /** Stop onionbalance and the frontend tor. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 90_000;
const OB_STOP_GRACE_MS = 5_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startOnionbalance(opts: OnionbalanceOptions): Promise<Onionbalance> {
  assertPrivateTorConfig(opts.joinConfig);
  const check = opts.checkNetworkShape ?? true;
  const voting = votingIntervalOf(opts.joinConfig);
  if (check && voting !== ONIONBALANCE_VOTING_INTERVAL_SEC) {
    throw new Error(
      `onionbalance: the network votes every ${voting ?? '(unset)'} s, but onionbalance --is-testnet assumes ` +
        `${ONIONBALANCE_VOTING_INTERVAL_SEC} s (it would publish for the wrong time period); start it with ` +
        `startTorNetwork({votingIntervalSec: ${ONIONBALANCE_VOTING_INTERVAL_SEC}, relays: ${ONIONBALANCE_MIN_HSDIRS}})`,
    );
  }
  let backends = checkBackends(opts.backends);
  const obBin = opts.onionbalanceBin ?? 'onionbalance';
  if (!onionbalanceAvailable(obBin)) {
    throw new Error(`onionbalance: "${obBin}" is not installed or not on PATH (Debian: apt-get install onionbalance)`);
  }
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const deadline = t0 + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const madeDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'torplus-onionbalance-')));
  await mkdir(path.join(dir, 'tor', 'data'), { recursive: true, mode: 0o700 });
  const keyFile = path.join(dir, 'master.key');
  const configFile = path.join(dir, 'config.yaml');
  const logFile = path.join(dir, 'onionbalance.log');
  const portFile = path.join(dir, 'tor', 'control-port');

  let tor: LoggedProcess | undefined;
  let ob: LoggedProcess | undefined;
  // The process may end in any way; onionbalance (python) does not watch its parent, so kill it then.
  const onExit = (): void => void ob?.child.kill('SIGKILL');
  process.on('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (ob) await stopProcesses([ob], OB_STOP_GRACE_MS);
      if (tor) await stopProcesses([tor]);
      process.off('exit', onExit);
      if (madeDir && process.env.TORPLUS_KEEP_TORNET !== '1') await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    // 1. The master key.
    let onion: string;
    let keyFormat: MasterKeyFormat;
    if (opts.masterKeyFile) {
      const key = await readMasterKey(opts.masterKeyFile);
      await copyFile(opts.masterKeyFile, keyFile);
      ({ onion, format: keyFormat } = key);
    } else {
      onion = await makeMasterKey(keyFile);
      keyFormat = 'pem';
    }

    // 2. The frontend tor: joins the network, a control port for onionbalance, no SOCKS port.
    const torDir = path.join(dir, 'tor');
    await writeFile(path.join(torDir, 'empty-defaults-torrc'), '');
    tor = await spawnTor(opts.torBin ?? 'tor', path.join(torDir, 'empty-defaults-torrc'), 'onionbalance-frontend', torDir, [
      `DataDirectory ${path.join(torDir, 'data')}`,
      'Nickname obfrontend',
      `__OwningControllerProcess ${opts.ownerPid ?? process.pid}`,
      'Log notice stdout',
      'SafeLogging 0',
      'SocksPort 0',
      'ControlPort 127.0.0.1:auto',
      `ControlPortWriteToFile ${portFile}`,
      'CookieAuthentication 1',
      opts.joinConfig.trim(),
    ]);
    const frontend = tor;
    await waitFor('the frontend tor to bootstrap', deadline, frontend, async () => {
      const text = await readFile(frontend.logFile, 'utf8').catch(() => '');
      return text.includes('Bootstrapped 100%') && existsSync(portFile);
    });
    const controlPort = Number(/PORT=127\.0\.0\.1:(\d+)/.exec(await readFile(portFile, 'utf8'))?.[1]);
    if (!controlPort) throw new Error(`onionbalance: unreadable ${portFile}`);
    log(`onionbalance: frontend tor bootstrapped at ${since()} (control port ${controlPort})`);
    if (check) await checkHsDirs(controlPort);
    void frontend.exited.then(async () => {
      if (!stopping) log(`onionbalance: the frontend tor exited (${describeExit(frontend)}):\n${await readLogTail(frontend.logFile)}`);
    });

    // 3. onionbalance itself.
    const launch = async (until: number): Promise<void> => {
      await writeConfig(configFile, backends);
      const offset = await stat(logFile).then((s) => s.size, () => 0);
      const args = [
        '--is-testnet',
        // -s first: onionbalance tries a unix control socket before -i/-p, by default /var/run/tor/control,
        // which would be the system tor. A path that does not exist sends it to our port.
        '-s', path.join(dir, 'no-control-socket'),
        '-i', '127.0.0.1', '-p', String(controlPort),
        '-c', configFile,
        '-v', opts.verbosity ?? 'info',
      ];
      // setpriv --pdeathsig: onionbalance dies with this process even on SIGKILL, where 'exit' never runs.
      const [bin, argv] = existsSync('/usr/bin/setpriv')
        ? ['/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', obBin, ...args]]
        : [obBin, args];
      await appendNote(logFile, `starting onionbalance with backends ${backends.join(' ')}`);
      const proc = spawnLogged('onionbalance', bin, argv, logFile, { ...process.env, PYTHONUNBUFFERED: '1' });
      ob = proc;
      const text = await waitFor('onionbalance to load its config', until, proc, async () => {
        const all = await readFile(logFile, 'utf8').catch(() => '');
        const mine = all.slice(offset);
        return mine.includes('Onionbalance initialized') ? mine : undefined;
      });
      const loaded = /Loaded onion (\S+) from/.exec(text)?.[1];
      if (!loaded || normalizeOnion(loaded) !== onion) {
        throw new Error(`onionbalance: loaded ${loaded ?? 'no'} master address, expected ${onion}; see ${logFile}`);
      }
      void proc.exited.then(() => {
        if (!stopping && ob === proc) log(`onionbalance: exited unexpectedly (${describeExit(proc)}); see ${logFile}`);
      });
    };
    await launch(deadline);
    log(`onionbalance: serving ${onion} from ${backends.length} backends at ${since()} (${dir})`);

    let queue: Promise<void> = Promise.resolve();
    return {
      onion,
      keyFormat,
      dir,
      configFile,
      logFile,
      torLogFile: frontend.logFile,
      controlPort,
      get backends() {
        return [...backends];
      },
      get pid() {
        return ob?.exit ? undefined : ob?.child.pid;
      },
      setBackends(onions) {
        const next = checkBackends(onions);
        // One restart at a time, in call order; a failed one does not block the next.
        const run = queue.then(async () => {
          if (stopping) throw new Error('onionbalance: stopped');
          // Cleared first, so that its exit is not reported as unexpected.
          const old = ob;
          ob = undefined;
          if (old) await stopProcesses([old], OB_STOP_GRACE_MS);
          backends = next;
          await launch(performance.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
        });
        queue = run.catch(() => {});
        return run;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Whether `bin` (a path, or a name looked up on PATH) is an existing file. */
export function onionbalanceAvailable(bin = 'onionbalance'): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(path.join(d, bin)));
}

function checkBackends(onions: readonly string[]): string[] {
  // onionbalance refuses a service without instances ("No backend instances are set").
  if (onions.length === 0) throw new Error('onionbalance: at least one backend onion address is needed');
  return onions.map(normalizeOnion);
}

/** config.yaml, written whole and renamed into place. Addresses are base32: nothing to quote. */
async function writeConfig(file: string, backends: readonly string[]): Promise<void> {
  const text = [
    '# Written by torplus devnet/onionbalance.ts; rewritten by setBackends().',
    'services:',
    // Relative to this file's folder (onionbalance resolves it so).
    '- key: master.key',
    '  instances:',
    ...backends.map((b) => `  - address: ${b.replace(/\.onion$/, '')}`),
    '',
  ].join('\n');
  await writeFile(`${file}.tmp`, text, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** Poll `ready` every 200 ms; throw with the end of the process's log if it exits or `deadline` passes. */
async function waitFor<T>(what: string, deadline: number, proc: LoggedProcess, ready: () => Promise<T | undefined | false>): Promise<T> {
  for (;;) {
    const v = await ready();
    if (v) return v;
    if (proc.exit) {
      throw new Error(`onionbalance: ${proc.name} exited (${describeExit(proc)}) while waiting for ${what}; end of ${proc.logFile}:\n${await readLogTail(proc.logFile)}`);
    }
    if (performance.now() > deadline) {
      throw new Error(`onionbalance: timed out waiting for ${what}; end of ${proc.logFile}:\n${await readLogTail(proc.logFile)}`);
    }
    await sleep(200);
  }
}

/** Refuse a consensus with too few HSDirs, which onionbalance 0.2.2 cannot publish to (see the top). */
async function checkHsDirs(controlPort: number): Promise<void> {
  const control = await TorControl.connect({ port: controlPort, timeoutMs: 5_000 });
  try {
    await control.authenticate();
    const key = 'dir/status-vote/current/consensus-microdesc';
    const consensus = (await control.getInfo(key))[key] ?? '';
    const hsdirs = consensus.split('\n').filter((l) => /^s .*\bHSDir\b/.test(l)).length;
    if (hsdirs < ONIONBALANCE_MIN_HSDIRS) {
      throw new Error(
        `onionbalance: the network's consensus has ${hsdirs} HSDirs; onionbalance 0.2.2 needs at least ` +
          `${ONIONBALANCE_MIN_HSDIRS} to publish (start the network with relays: ${ONIONBALANCE_MIN_HSDIRS})`,
      );
    }
  } finally {
    await control.close().catch(() => {});
  }
}
