// The private Tor network that jest's global setup started for this run (bridge/test/global-setup.ts).
import { readFileSync } from 'node:fs';

export interface SharedTorNetwork {
  dir: string;
  /** The client tor's SocksPort on 127.0.0.1. */
  socksPort: number;
  /** A file of torrc lines that make another tor join the network (TOR_EXTRA_CONFIG for the bridge). */
  joinConfigFile: string;
  /** The contents of joinConfigFile. */
  joinConfig: string;
}

/** True when the global setup started a network for this run. */
export function hasSharedTorNetwork(): boolean {
  return Boolean(process.env.TORPLUS_TEST_TORNET);
}

export function sharedTorNetwork(): SharedTorNetwork {
  const raw = process.env.TORPLUS_TEST_TORNET;
  if (!raw) {
    const why =
      process.env.TORPLUS_SKIP_TORNET === '1'
        ? 'TORPLUS_SKIP_TORNET=1 is set'
        : 'this test did not run under jest with bridge/test/global-setup.ts';
    throw new Error(
      `No private Tor network: TORPLUS_TEST_TORNET is unset (${why}). Run the end-to-end tests with ` +
        '`npm test` (or NODE_OPTIONS=--experimental-vm-modules jest) and without TORPLUS_SKIP_TORNET.',
    );
  }
  let parsed: { dir?: unknown; socksPort?: unknown; joinConfigFile?: unknown };
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch (err) {
    throw new Error(`TORPLUS_TEST_TORNET is not valid JSON: ${raw}`, { cause: err });
  }
  const { dir, socksPort, joinConfigFile } = parsed;
  if (typeof dir !== 'string' || typeof socksPort !== 'number' || typeof joinConfigFile !== 'string') {
    throw new Error(`TORPLUS_TEST_TORNET lacks dir, socksPort or joinConfigFile: ${raw}`);
  }
  let joinConfig: string;
  try {
    joinConfig = readFileSync(joinConfigFile, 'utf8');
  } catch (err) {
    throw new Error(`The private Tor network's ${joinConfigFile} is unreadable (network stopped?)`, { cause: err });
  }
  return { dir, socksPort, joinConfigFile, joinConfig };
}
