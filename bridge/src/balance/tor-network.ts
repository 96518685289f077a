// Which Tor network the frontend's tor joins, as far as onionbalance must know. onionbalance's
// `--is-testnet` swaps the real network's timing for chutney's (20 s descriptor lifetimes, 8-minute time
// periods): on the real Tor network that publishes descriptors clients cannot find, so it is passed only
// when the tor config (TOR_EXTRA_CONFIG) makes a private test network, and never otherwise.

/** `TestingTorNetwork 1` as an active line of the torrc text (tor's option names are case-insensitive). */
export function isPrivateTestNetwork(torrc: string | undefined): boolean {
  if (!torrc) return false;
  return torrc.split(/\r?\n/).some((l) => /^\s*TestingTorNetwork\s+1\s*(#.*)?$/i.test(l));
}

/** What `--is-testnet` hard-codes (onionbalance hs_v3/consensus.py): 20 s voting. */
export const TESTNET_VOTING_INTERVAL_SEC = 20;

/**
 * A warning for a test network onionbalance cannot publish on correctly, or undefined. With any other
 * voting interval it blinds the master key for the wrong time period and nobody finds the descriptor.
 */
export function testNetworkProblem(torrc: string | undefined): string | undefined {
  if (!isPrivateTestNetwork(torrc)) return undefined;
  const m = /^\s*V3AuthVotingInterval\s+(\d+)\s*$/im.exec(torrc ?? '');
  const voting = m ? Number(m[1]) : undefined;
  if (voting === TESTNET_VOTING_INTERVAL_SEC) return undefined;
  return (
    `the test network votes every ${voting ?? '(unset)'} s, but onionbalance --is-testnet assumes ` +
    `${TESTNET_VOTING_INTERVAL_SEC} s: the master descriptor will be published for the wrong time period`
  );
}
