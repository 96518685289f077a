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
//
// The parts live in their own files: tornet-config.ts (the shared torrc lines, the voting schedule,
// assertPrivateTorConfig), authority-keys.ts, tor-process.ts (spawn/stop/log tails), onion-service-tor.ts
// (startOnionServiceTor) and wait-for-onion.ts (waitForOnion). This module starts the network and re-exports
// the rest, so callers import from here as before.
//
// global-setup.ts loads this file (and what it imports) with Node's type stripping: erasable syntax only.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, freePorts } from '../util/free-port.js';
import { makeAuthority, type Authority } from './authority-keys.js';
import { describeExit, readLogTail, spawnTor, stopProcesses, type TorProcess } from './tor-process.js';
import { assertPrivateTorConfig, DEFAULT_VOTING_INTERVAL_SEC, sharedLines, votingSchedule } from './tornet-config.js';

export type { FetchResult } from './socks-http.js';
export { waitForOnion } from './wait-for-onion.js';
export { assertPrivateTorConfig, votingIntervalOf } from './tornet-config.js';
export { startOnionServiceTor } from './onion-service-tor.js';
export type { OnionServiceTor, OnionServiceTorOptions } from './onion-service-tor.js';

export interface TorNetworkOptions {
  /** Where the tors keep their data. Default: a fresh mkdtemp directory, removed again by stop(). */
  dir?: string;
  /** Default 'tor'. tor-gencert is taken from the same directory if it is there, else from PATH. */
  torBin?: string;
  /**
   * Non-authority relays; default 2. Every relay and authority is an HSDir, and Onionbalance 0.2.2 needs at
   * least 8 of them (its hash ring wants 2 replicas × 4 distinct HSDirs): use 8 relays for it.
   */
  relays?: number;
  /**
   * V3AuthVotingInterval in seconds; default 10 (first consensus after 5 s). Any other value is also used
   * for the first consensus (see votingSchedule in tornet-config.ts). Onionbalance's `--is-testnet` needs 20.
   */
  votingIntervalSec?: number;
  /** TestingV3AuthInitialVotingInterval, to override what votingIntervalSec implies. */
  initialVotingIntervalSec?: number;
  /** Give up (and stop every tor) after this long; default 90 s at 10 s voting, proportionally more above. */
  timeoutMs?: number;
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
  /** Non-authority relays in the network. */
  relays: number;
  /** V3AuthVotingInterval, in seconds. */
  votingIntervalSec: number;
  pids: number[];
  /** SIGTERM every tor, SIGKILL after 3 s, wait for them to exit. Idempotent. */
  stop(): Promise<void>;
}

// At the default 10 s voting the network is up in 15–20 s; the hard limit grows with a slower schedule.
const HARD_TIMEOUT_MS = 90_000;

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
 * abort, or after the hard timeout (90 s at the default schedule), stop every tor already started and reject with
 * the tail of the failing tor's log.
 */
export async function startTorNetwork(opts: TorNetworkOptions = {}): Promise<TorNetwork> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const torBin = opts.torBin ?? 'tor';
  const siblingGencert = path.join(path.dirname(torBin), 'tor-gencert');
  const gencertBin = torBin.includes('/') && existsSync(siblingGencert) ? siblingGencert : 'tor-gencert';
  const relayCount = opts.relays ?? 2;
  if (!Number.isInteger(relayCount) || relayCount < 0) throw new RangeError(`tornet: relays must be a non-negative integer, got ${relayCount}`);
  const voting = votingSchedule(opts.votingIntervalSec, opts.initialVotingIntervalSec);
  const hardTimeoutMs =
    opts.timeoutMs ?? HARD_TIMEOUT_MS * Math.max(1, voting.intervalSec / DEFAULT_VOTING_INTERVAL_SEC);
  const ownerPid = opts.ownerPid ?? process.pid;
  const madeDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'torplus-tornet-')));
  if (!madeDir) await mkdir(dir, { recursive: true, mode: 0o700 });
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  // One controller for the hard timeout and the caller's signal; aborting it kills the keygen steps too.
  const ac = new AbortController();
  const hardTimer = setTimeout(
    () => ac.abort(new Error(`private Tor network: not up after ${hardTimeoutMs / 1000} s`)),
    hardTimeoutMs,
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
        throw new Error(`private Tor network: tor "${p.name}" exited (${describeExit(p)}); end of ${p.logFile}:\n${await readLogTail(p.logFile)}`);
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
      [1, 2, 3].map((i) =>
        makeAuthority({
          name: `auth${i}`,
          dataDir: path.join(dir, `auth${i}`),
          orPort: nextPort(),
          dirPort: nextPort(),
          torBin,
          gencertBin,
          emptyDefaults,
          signal: ac.signal,
        }),
      ),
    );
    checkAbort();
    stage = 'starting authorities and relays';
    log(`tornet: authority keys made in ${since()} (${dir}; ${relayCount} relays, ${voting.intervalSec} s voting)`);

    const shared = sharedLines(authorities, voting);
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
      relays: relayCount,
      votingIntervalSec: voting.intervalSec,
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
