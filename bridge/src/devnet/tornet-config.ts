// torrc text for the private Tor network: the lines every tor of the network shares (which are also what an
// outside tor adds to join it), the voting schedule, and the check that a config cannot reach the public Tor
// network. Split out of tornet.ts, which re-exports assertPrivateTorConfig.
//
// global-setup.ts loads tornet.ts (and so this file) with Node's type stripping: erasable syntax only.

/** What the DirAuthority line of one authority needs. */
export interface AuthorityLine {
  name: string;
  orPort: number;
  dirPort: number;
  v3ident: string;
  fingerprint: string;
}

/** The directory authorities' voting schedule, in seconds. */
export interface VotingSchedule {
  /** V3AuthVotingInterval. */
  intervalSec: number;
  /** TestingV3AuthInitialVotingInterval: the schedule until the first consensus. */
  initialIntervalSec: number;
}

export const DEFAULT_VOTING_INTERVAL_SEC = 10;
const DEFAULT_INITIAL_VOTING_INTERVAL_SEC = 5;
// V3AuthVoteDelay and V3AuthDistDelay (and their Testing…Initial… twins): an interval must be longer than both.
const VOTE_DELAY_SEC = 2;
const DIST_DELAY_SEC = 2;

/**
 * The schedule for a voting interval. The default (10 s, first consensus after 5 s) is what the tests and the
 * demo have always used. Any other interval also becomes the initial one: tor takes an onion service's time
 * period length from the live consensus (24 × its fresh-until minus valid-after), so while the first
 * consensus is live a shorter initial interval would give a shorter time period. Onionbalance's
 * `--is-testnet` hard-codes 20 s voting (an 8-minute time period) and needs both at 20 from the start.
 */
export function votingSchedule(intervalSec = DEFAULT_VOTING_INTERVAL_SEC, initialIntervalSec?: number): VotingSchedule {
  const initial =
    initialIntervalSec ?? (intervalSec === DEFAULT_VOTING_INTERVAL_SEC ? DEFAULT_INITIAL_VOTING_INTERVAL_SEC : intervalSec);
  for (const [what, v] of [['votingIntervalSec', intervalSec], ['initialVotingIntervalSec', initial]] as const) {
    // tor refuses an initial interval that does not divide 30 minutes, and warns about a regular one that does
    // not divide 24 hours; both must leave room for the vote and distribution delays.
    if (!Number.isInteger(v) || v <= VOTE_DELAY_SEC + DIST_DELAY_SEC || 1800 % v !== 0) {
      throw new RangeError(`tornet: ${what} must be an integer above ${VOTE_DELAY_SEC + DIST_DELAY_SEC} that divides 1800, got ${v}`);
    }
  }
  return { intervalSec, initialIntervalSec: initial };
}

/** The lines every tor of the network shares (also what an outside tor needs to join it). */
export function sharedLines(authorities: AuthorityLine[], voting: VotingSchedule): string[] {
  return [
    'TestingTorNetwork 1',
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.25',
    `TestingV3AuthInitialVotingInterval ${voting.initialIntervalSec}`,
    `TestingV3AuthInitialVoteDelay ${VOTE_DELAY_SEC}`,
    `TestingV3AuthInitialDistDelay ${DIST_DELAY_SEC}`,
    `V3AuthVotingInterval ${voting.intervalSec}`,
    `V3AuthVoteDelay ${VOTE_DELAY_SEC}`,
    `V3AuthDistDelay ${DIST_DELAY_SEC}`,
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

/** The voting interval a join config sets (V3AuthVotingInterval), or undefined when it sets none. */
export function votingIntervalOf(joinConfig: string): number | undefined {
  const m = /^V3AuthVotingInterval\s+(\d+)\s*$/m.exec(joinConfig);
  return m ? Number(m[1]) : undefined;
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
