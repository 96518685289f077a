// Metering of bitswap per peer, installed on a running libp2p node.
//
// Field notes (libp2p 3.3.11, @helia/bitswap 4.0.x): bitswap's per-peer Ledger is internal and dropped on
// disconnect, and `libp2p.use()` middleware is broken, but bitswap opens a new stream for every message
// with `libp2p.dialProtocol(peer, '/ipfs/bitswap/1.2.0')`. So outbound bytes are counted, and throttled,
// by wrapping dialProtocol: at the bitswap stream, never at the transport, because a throttled
// connection would also delay libp2p's pings and the connection monitor would close it. Inbound bytes
// are counted by wrapping bitswap's stream handler.
import { isPeerId, type Connection, type Libp2p, type PeerId, type Stream, type StreamHandler, type StreamHandlerRecord } from '@libp2p/interface';
import { isMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { pacedStream, type PeerGate } from './paced-stream.js';

export type { PeerGate } from './paced-stream.js';

/** Every bitswap version @helia/bitswap speaks starts with this. */
export const BITSWAP_PREFIX = '/ipfs/bitswap/';

export interface MeterBitswapOptions {
  /** Told once when inbound bytes cannot be counted (the node's registrar is out of reach). */
  onWarning?: (message: string) => void;
}

/** The part of libp2p's registrar used to find bitswap's handler when it was registered before us. */
interface RegistrarLike {
  getProtocols(): string[];
  getHandler(protocol: string): StreamHandlerRecord;
}

/**
 * Counts what goes to and comes from each peer over bitswap and paces bitswap streams to throttled
 * peers (see paced-stream.ts). Install after the Helia node started (its libp2p exists from then on);
 * returns the uninstall function. Other protocols, `/torplus/payment/1.0.0` included, are untouched.
 */
export function meterBitswap(libp2p: Libp2p, gate: PeerGate, opts: MeterBitswapOptions = {}): () => Promise<void> {
  const node = libp2p as Libp2p & Record<string, unknown>;
  const hadOwnDial = Object.prototype.hasOwnProperty.call(node, 'dialProtocol');
  const hadOwnHandle = Object.prototype.hasOwnProperty.call(node, 'handle');
  const dialProtocol = libp2p.dialProtocol.bind(libp2p);
  const handle = libp2p.handle.bind(libp2p);
  let active = true;

  const wrappedDial: Libp2p['dialProtocol'] = async (peer, protocols, options = {}) => {
    const stream = await dialProtocol(peer, protocols, options);
    if (!active || !stream.protocol?.startsWith(BITSWAP_PREFIX)) return stream;
    const id = peerIdOf(peer);
    if (!id) return stream;
    const protocol = stream.protocol;
    return pacedStream(stream, {
      peer: id.toString(),
      remoteAddr: libp2p.getConnections(id)[0]?.remoteAddr.toString(),
      gate,
      dial: (signal) => dialProtocol(id, protocol, { signal, runOnLimitedConnection: options.runOnLimitedConnection ?? false }),
    });
  };
  node.dialProtocol = wrappedDial;

  // Inbound: bitswap registers its handler when Helia starts, so it is normally there already; it is
  // re-registered (force) wrapped. A later registration (a restart) goes through the wrapped handle().
  const wrapped = new Map<string, StreamHandler>();
  const countIn = (protocol: string, handler: StreamHandler): StreamHandler => {
    const h: StreamHandler = (stream: Stream, connection: Connection) => {
      if (active) {
        const peer = connection.remotePeer.toString();
        const addr = connection.remoteAddr.toString();
        stream.addEventListener('message', (e) => gate.received(peer, e.data.byteLength, addr));
      }
      return handler(stream, connection);
    };
    wrapped.set(protocol, handler);
    return h;
  };
  const wrappedHandle: Libp2p['handle'] = async (protocols, handler, options) => {
    const list = Array.isArray(protocols) ? protocols : [protocols];
    await Promise.all(list.map((p) => handle(p, active && p.startsWith(BITSWAP_PREFIX) ? countIn(p, handler) : handler, options)));
  };
  node.handle = wrappedHandle;

  const registrar = registrarOf(libp2p);
  const rewrap = async (unwrap: boolean): Promise<void> => {
    if (!registrar) return;
    for (const protocol of registrar.getProtocols().filter((p) => p.startsWith(BITSWAP_PREFIX))) {
      const record = registrar.getHandler(protocol);
      const original = wrapped.get(protocol);
      if (unwrap) {
        if (original) await handle(protocol, original, { ...record.options, force: true });
      } else if (!original) {
        await handle(protocol, countIn(protocol, record.handler), { ...record.options, force: true });
      }
    }
  };
  const installed = rewrap(false).catch((err: Error) => opts.onWarning?.(`bitswap bytes received are not counted: ${err.message}`));
  if (!registrar) opts.onWarning?.('bitswap bytes received are not counted: this libp2p build does not expose its registrar');

  return async () => {
    await installed;
    active = false;
    restore(node, 'dialProtocol', wrappedDial, hadOwnDial ? dialProtocol : undefined);
    restore(node, 'handle', wrappedHandle, hadOwnHandle ? handle : undefined);
    await rewrap(true);
  };
}

/** Puts back `key` if it is still ours; a wrapper installed over ours keeps working (ours passes through). */
function restore(node: Record<string, unknown>, key: string, ours: unknown, previous: unknown): void {
  if (node[key] !== ours) return;
  if (previous === undefined) delete node[key];
  else node[key] = previous;
}

function peerIdOf(target: PeerId | Multiaddr | Multiaddr[]): PeerId | undefined {
  if (isPeerId(target)) return target;
  const addr = Array.isArray(target) ? target[0] : target;
  if (!addr || !isMultiaddr(addr)) return undefined;
  const p2p = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
  try {
    return p2p ? peerIdFromString(p2p) : undefined;
  } catch {
    return undefined;
  }
}

/** libp2p 3's node keeps its components (registrar included) on a public field the typings omit. */
function registrarOf(libp2p: Libp2p): RegistrarLike | undefined {
  const r = (libp2p as unknown as { components?: { registrar?: Partial<RegistrarLike> } }).components?.registrar;
  return typeof r?.getHandler === 'function' && typeof r.getProtocols === 'function' ? (r as RegistrarLike) : undefined;
}
