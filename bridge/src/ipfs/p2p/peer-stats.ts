// The admin view of peers: one record per peer seen over bitswap (or that asked this node to pay),
// from the PeerMeter's accounting, the live connections, and the PeerPayer's records. Amounts are
// bigint stroops, as elsewhere in the admin API (gateway/api/json.ts toApiJson formats them).
import type { Libp2p } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PeerMeter } from './peer-meter.js';
import type { PeerPayer } from './peer-payer.js';

export interface PeerRecord {
  peerId: string;
  /** The current connection's address, else the last one seen. */
  remoteAddr: string | undefined;
  connected: boolean;
  /** Bitswap bytes this node sent the peer (framing included). */
  bytesSent: number;
  /** Bitswap bytes the peer sent this node. */
  bytesReceived: number;
  /** Free bytes it has left, and paid credit (bytes). */
  freeBytesLeft: number;
  creditBytes: number;
  /** What this node asked it to pay, and what it paid (stroops). */
  requestedStroops: bigint;
  paidStroops: bigint;
  throttled: boolean;
  /** The open payment request it was sent, if any. */
  openRequestId: string | undefined;
  /** How the last offer ended: 'pending', 'paid', 'declined: …', 'failed: …'. */
  lastOffer: string | undefined;
  /** The other way: what the peer asked this node, and what this node paid it (stroops). */
  peerAskedStroops: bigint;
  paidToPeerStroops: bigint;
  lastDecline: string | undefined;
}

export interface PeerStatsSources {
  libp2p: Pick<Libp2p, 'getConnections'>;
  meter: PeerMeter;
  payer?: PeerPayer | undefined;
}

/** Every peer known, most bytes sent first. */
export function peerStats(s: PeerStatsSources): PeerRecord[] {
  const payerRecords = s.payer?.records() ?? new Map();
  const byPeer = new Map(s.meter.accounting().map((p) => [p.peerId, p]));
  const ids = new Set([...byPeer.keys(), ...payerRecords.keys()]);
  const out: PeerRecord[] = [];
  for (const id of ids) {
    const p = byPeer.get(id);
    const a = p?.account;
    const conn = connectionOf(s.libp2p, id);
    const paying = payerRecords.get(id);
    const offer = p?.lastOffer;
    const request = a?.request?.status === 'open' && a.request.expiresAt > Date.now() ? a.request : undefined;
    out.push({
      peerId: id,
      remoteAddr: conn ?? p?.lastAddr,
      connected: conn !== undefined,
      bytesSent: p?.bytesSent ?? 0,
      bytesReceived: p?.bytesReceived ?? 0,
      freeBytesLeft: a?.freeLeft ?? s.meter.freeBytes,
      creditBytes: a?.credit ?? 0,
      requestedStroops: p ? [...p.requests.values()].reduce((n, v) => n + v, 0n) : 0n,
      paidStroops: p?.paidStroops ?? 0n,
      throttled: a?.throttled ?? false,
      openRequestId: request?.id,
      lastOffer: !offer ? undefined : !offer.outcome ? 'pending' : offer.outcome.status === 'paid' ? 'paid' : `${offer.outcome.status}: ${offer.outcome.reason}`,
      peerAskedStroops: paying?.askedStroops ?? 0n,
      paidToPeerStroops: paying?.paidStroops ?? 0n,
      lastDecline: paying?.lastDecline,
    });
  }
  return out.sort((x, y) => y.bytesSent - x.bytesSent || x.peerId.localeCompare(y.peerId));
}

function connectionOf(libp2p: Pick<Libp2p, 'getConnections'>, id: string): string | undefined {
  try {
    return libp2p.getConnections(peerIdFromString(id)).find((c) => c.status === 'open')?.remoteAddr.toString();
  } catch {
    return undefined; // not a valid peer id: never connected
  }
}
