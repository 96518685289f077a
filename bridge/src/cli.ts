#!/usr/bin/env node
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { BridgeNotRunningError, callControl, CONTROL_SOCKET } from './control/control-socket.js';
import { createFillProgress, type FillProgress } from './ipfs/fill/index.js';
import { runDoctor } from './doctor/doctor.js';
import { runInit } from './init/init.js';
import { formatChecks } from './doctor/check.js';
import { createLogger } from './log/logger.js';
import { Supervisor } from './supervisor.js';
import { BalanceService } from './balance/balance-service.js';
import { PgInstanceRegistry } from './cluster/instances.js';

const USAGE = `Usage: torplus-bridge [start]
       torplus-bridge fill [ONION ...]
       torplus-bridge doctor
       torplus-bridge init
       torplus-bridge balance

  start   run the bridge (the default): tor, the onion service, the proxy, the API and IPFS.
  fill    cache the most requested content of PEERS (or of the onion addresses given) within
          FILL_RESERVE_BYTES, over Tor, in the running bridge. Exits 0 when at least one peer
          was filled from, 1 when every peer was skipped or the bridge is not running.
  init    first steps in this folder: the folders, .env with the seed (asked without echo) and
          PP_ENV, the onion key, the account check, and what to publish in DNS.
  doctor  check what a publisher must get right (tor and the onion, the TXT and DNSLink records,
          the certificate, the upstream, Horizon and the account, permissions, disk space) and
          print a checklist with the fix for each failure. Exits 1 when anything fails.
  balance run the Onionbalance frontend: publish one onion address (the key in TOR_DIR) for every
          bridge started with BALANCE_MASTER_ONION and the same DATABASE_URL (required here).

Settings come from environment variables and .env; see .env.example.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'start';
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (command === 'init') {
    // Before any configuration exists: init is what writes it.
    const horizonUrl = process.env.HORIZON_URL?.trim() || undefined;
    return runInit({ cwd: process.cwd(), input: process.stdin, output: process.stdout, ...(horizonUrl ? { horizonUrl } : {}) });
  }
  if (command !== 'start' && command !== 'fill' && command !== 'doctor' && command !== 'balance') {
    process.stderr.write(`torplus-bridge: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    // Onion addresses after `fill` replace PEERS, checked by the same rules.
    const peers = command === 'fill' ? argv.slice(1) : [];
    config = loadConfig(peers.length > 0 ? { ...process.env, PEERS: peers.join(',') } : process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`torplus-bridge: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (command === 'fill') return fill(config);
  if (command === 'balance') return balance(config);
  if (command === 'doctor') {
    const results = await runDoctor(config);
    process.stdout.write(formatChecks(results) + '\n');
    return results.every((r) => r.ok) ? 0 : 1;
  }
  // The seed and admin token are also scrubbed from every log line: a second line of defence.
  const secrets = [config.payments.seed, config.payments.adminToken].flatMap((s) => (s ? [s.reveal()] : []));
  const log = createLogger({ level: config.logLevel, secrets });
  return runUntilSignalled(new Supervisor({ config, log }), log);
}

/**
 * Runs fill inside the running bridge, over its control socket: the bridge owns tor and the IPFS store,
 * and a second process writing the same store would race its garbage collection.
 */
async function fill(config: Config): Promise<number> {
  if (!config.ipfs.enabled) {
    process.stderr.write('torplus-bridge fill: IPFS is off (IPFS_ENABLED=false); nothing to fill\n');
    return 2;
  }
  if (config.ipfs.peers.length === 0) {
    process.stderr.write('torplus-bridge fill: no peers: set PEERS to their onion addresses (comma-separated), or name them after `fill`\n');
    return 2;
  }
  const progress = createFillProgress({ stream: process.stderr });
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  try {
    return await callControl(
      join(config.paths.data, CONTROL_SOCKET),
      'fill',
      { peers: config.ipfs.peers },
      {
        out: (text) => process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
        err: (text) => process.stderr.write(`torplus-bridge fill: ${text}\n`),
        event: (e) => progress(e as unknown as FillProgress),
      },
      ac.signal,
    );
  } catch (err) {
    if (err instanceof BridgeNotRunningError) {
      process.stderr.write(`torplus-bridge fill: ${err.message}. fill runs inside the bridge, which owns tor and the IPFS store: start it (npm start) with the same settings, then run fill again.\n`);
      return 1;
    }
    process.stderr.write(`torplus-bridge fill: ${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * The Onionbalance frontend: reads the live backends from the PostgreSQL the bridges share, so it needs
 * DATABASE_URL; runs until SIGTERM or SIGINT like the bridge.
 */
async function balance(config: Config): Promise<number> {
  const url = config.payments.databaseUrl;
  if (!url) {
    process.stderr.write('torplus-bridge balance: DATABASE_URL is not set: the frontend reads the live bridges from the PostgreSQL they share (postgres://user@host:5432/db)\n');
    return 2;
  }
  const log = createLogger({ level: config.logLevel, secrets: [url.reveal()] });
  let registry: PgInstanceRegistry;
  try {
    registry = await PgInstanceRegistry.open(url.reveal(), (err) => log.debug(`registry: ${err.message}`, { service: 'balance' }));
  } catch (err) {
    process.stderr.write(`torplus-bridge balance: cannot open the bridges' registry in PostgreSQL: ${(err as Error).message}\n`);
    return 1;
  }
  const service = new BalanceService({
    torDir: config.paths.tor,
    torBin: config.tor.bin,
    extraConfigFile: config.tor.extraConfigFile,
    domain: config.domain,
    registry,
    log,
  });
  return runUntilSignalled({
    start: (signal) => service.start(signal),
    stop: async () => {
      await service.stop();
      await registry.close().catch(() => {});
    },
  }, log);
}

/** Starts the bridge (or the frontend) and keeps it up until SIGTERM or SIGINT, then stops everything within 10 s. */
async function runUntilSignalled(sup: Pick<Supervisor, 'start' | 'stop'>, log: ReturnType<typeof createLogger>): Promise<number> {
  const abort = new AbortController();
  let stopping: Promise<number> | undefined;
  const stop = (why: string): Promise<number> => {
    if (stopping) return stopping;
    log.info(`${why}: stopping`);
    abort.abort(new Error(why));
    // Never hang on the way out: a second signal or 10 s end the process regardless.
    const hard = setTimeout(() => {
      log.error('stop took longer than 10 s; exiting anyway');
      process.exit(1);
    }, 10_000);
    hard.unref();
    stopping = sup.stop().then(() => {
      clearTimeout(hard);
      log.info('stopped');
      return 0;
    });
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.on(sig, () => {
        if (stopping) {
          log.warn(`${sig} again: exiting now`);
          process.exit(1);
        }
        void stop(sig).then(resolve);
      });
    }
  });
  try {
    await sup.start(abort.signal);
  } catch (err) {
    if (abort.signal.aborted) return done;
    log.error(`start failed: ${(err as Error).message}`);
    await sup.stop();
    return 1;
  }
  return done;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`torplus-bridge: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
