// Why a fill stopped. Two scopes, because they call for different reactions: a PeerFault means the peer
// cannot be relied on for this run (unreachable, too slow, or it sent something false), so its remaining DAGs
// are skipped; a DagSkip concerns one DAG only (we cannot check its format, it does not fit) and the peer's
// next DAG is tried.

/** What went wrong with a peer, for the summary and for tests. */
export type PeerFaultKind =
  | 'unreachable' // no TCP/Tor connection, or no HTTP answer
  | 'stalled' // no bytes for stallMs
  | 'timeout' // over the per-peer deadline
  | 'bad-response' // HTTP error, malformed JSON or CAR framing
  | 'bad-block' // a block whose bytes do not hash to its CID, or that the DAG does not link to
  | 'incomplete' // the CAR ended before every linked block arrived, or its root is not the one asked for
  | 'oversized'; // more bytes than declared (plus slack), than fit in the reserve, or a block over the limit

export class PeerFault extends Error {
  readonly kind: PeerFaultKind;
  constructor(kind: PeerFaultKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerFault';
    this.kind = kind;
  }
}

/** One DAG is skipped; the peer's other DAGs are still tried. */
export class DagSkip extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DagSkip';
  }
}
