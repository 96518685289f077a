import type { Socket } from 'node:net';

/**
 * Who is on the other end of a connection. An onion visitor is one Tor circuit: tor tells us its
 * global circuit ID in the PROXY line, and Tor Browser uses one circuit per site, so this names a
 * visitor without a cookie. A direct visitor came in on the plain HTTP port.
 */
export type Visitor = { kind: 'circuit'; circuitId: number } | { kind: 'direct' };

const DIRECT: Visitor = { kind: 'direct' };
const visitors = new WeakMap<Socket, Visitor>();

export function tagSocket(socket: Socket, visitor: Visitor): void {
  visitors.set(socket, visitor);
}

export function visitorOf(socket: Socket): Visitor {
  // Over HTTPS the request's socket is the TLSSocket; the PROXY line tagged the raw one beneath it.
  return visitors.get(socket) ?? visitors.get((socket as Socket & { _parent?: Socket })._parent as Socket) ?? DIRECT;
}

export function visitorKey(v: Visitor): string {
  return v.kind === 'circuit' ? `circuit:${v.circuitId}` : 'direct';
}
