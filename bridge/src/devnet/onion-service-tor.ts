// One extra tor that joins the private network as an onion service (no SocksPort), optionally as an
// Onionbalance instance (a backend of a master onion). Split out of tornet.ts, which re-exports it.
//
// global-setup.ts loads tornet.ts (and so this file) with Node's type stripping: erasable syntax only.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ONIONBALANCE_INSTANCE_LINE, writeObConfig } from '../tor/onionbalance-instance.js';
import { readLogTail, spawnTor, stopProcesses } from './tor-process.js';
import { assertPrivateTorConfig } from './tornet-config.js';

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
  /**
   * Make this service an Onionbalance instance of this master onion (`<56 chars>.onion`, suffix optional):
   * `HiddenServiceOnionbalanceInstance 1` and an `ob_config` naming the master in the hidden-service folder.
   */
  onionbalanceMaster?: string;
  /** How long to wait for the hostname file; default 15 s. */
  timeoutMs?: number;
}

export interface OnionServiceTor {
  /** `<56 chars>.onion` */
  onion: string;
  dir: string;
  pid: number;
  logFile: string;
  /** SIGTERM (SIGKILL after 3 s), wait for the exit, remove the folder if we made it. Idempotent. */
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
  // Written before tor starts: tor refuses HiddenServiceOnionbalanceInstance without it.
  if (opts.onionbalanceMaster !== undefined) await writeObConfig(hsDir, opts.onionbalanceMaster);
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
    ...(opts.onionbalanceMaster !== undefined ? [ONIONBALANCE_INSTANCE_LINE] : []),
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
