#!/usr/bin/env node
import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './log/logger.js';
import { Supervisor } from './supervisor.js';

const USAGE = `Usage: torplus-bridge [start]

  start   run the bridge (the default): tor, the onion service, the proxy and the API.

Settings come from environment variables and .env; see .env.example.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'start';
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (command !== 'start') {
    process.stderr.write(`torplus-bridge: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`torplus-bridge: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // The seed and admin token are also scrubbed from every log line: a second line of defence.
  const secrets = [config.payments.seed, config.payments.adminToken].flatMap((s) => (s ? [s.reveal()] : []));
  const log = createLogger({ level: config.logLevel, secrets });
  return runUntilSignalled(new Supervisor({ config, log }), log);
}

/** Starts the bridge and keeps it up until SIGTERM or SIGINT, then stops everything within 10 s. */
async function runUntilSignalled(sup: Supervisor, log: ReturnType<typeof createLogger>): Promise<number> {
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
