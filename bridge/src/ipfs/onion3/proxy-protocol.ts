// PROXY protocol v1, as tor writes it before each stream's bytes when the onion service runs with
// `HiddenServiceExportCircuitID haproxy`:
//   PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 4001\r\n
// The last 32 bits of the source address are the circuit's global ID. Only this shape is accepted:
// anything else did not come from tor.
import { isIPv6, type Socket } from 'node:net';

/** The longest v1 header the spec allows, CRLF included. */
export const MAX_PROXY_LINE = 107;

// tor's fixed prefix of the fake source address (src/core/or/connection_edge.c).
const TOR_PREFIX = [0xfc00, 0xdead, 0xbeef, 0x4dad];

export type ProxyLineResult =
  | { ok: true; circuitId: number; headerLength: number }
  | { ok: false; reason: string }
  | { ok: 'incomplete' };

/** Parses the PROXY line at the start of `buf`. `incomplete` means: read more bytes. */
export function parseProxyLine(buf: Uint8Array): ProxyLineResult {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = bytes.indexOf('\r\n');
  if (end === -1) {
    if (bytes.length >= MAX_PROXY_LINE) return { ok: false, reason: `no CRLF within ${MAX_PROXY_LINE} bytes` };
    const prefix = bytes.subarray(0, 6).toString('latin1');
    if (!'PROXY '.startsWith(prefix)) return { ok: false, reason: 'does not start with "PROXY "' };
    return { ok: 'incomplete' };
  }
  if (end + 2 > MAX_PROXY_LINE) return { ok: false, reason: `line longer than ${MAX_PROXY_LINE} bytes` };
  const parts = bytes.subarray(0, end).toString('latin1').split(' ');
  if (parts.length !== 6 || parts[0] !== 'PROXY') return { ok: false, reason: 'not a PROXY v1 line' };
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (proto !== 'TCP6') return { ok: false, reason: `unexpected protocol ${JSON.stringify(proto)}` };
  if (!isIPv6(src) || !isIPv6(dst)) return { ok: false, reason: 'addresses are not IPv6' };
  if (!isPort(sport) || !isPort(dport)) return { ok: false, reason: 'bad port' };
  const words = expandIPv6(src);
  if (words == null || TOR_PREFIX.some((w, i) => words[i] !== w)) {
    return { ok: false, reason: 'source is not a tor circuit address (fc00:dead:beef:4dad::/64)' };
  }
  return { ok: true, circuitId: words[6]! * 0x10000 + words[7]!, headerLength: end + 2 };
}

export interface ProxyHeader {
  circuitId: number;
  /** Bytes that arrived after the PROXY line: the start of the stream proper. */
  rest: Uint8Array;
}

/**
 * Reads the PROXY line from a fresh inbound socket. Resolves once the line is complete, leaving the
 * socket paused with no listeners of ours: the caller attaches its own and resumes it. Rejects on a
 * malformed line, on timeout, and if the socket closes first; the caller then destroys the socket.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, header?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (err != null) reject(err);
      else resolve(header!);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyLine(buf);
      if (r.ok === 'incomplete') return;
      // Stop the flow now: no further 'data' may be emitted before the caller listens.
      socket.pause();
      if (r.ok === false) return finish(new Error(`bad PROXY protocol line from tor: ${r.reason}`));
      finish(undefined, { circuitId: r.circuitId, rest: buf.subarray(r.headerLength) });
    };
    const onEnd = (): void => finish(new Error('connection closed before its PROXY protocol line'));
    const onError = (err: Error): void => finish(err);
    const timer = setTimeout(
      () => finish(new Error(`no complete PROXY protocol line within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

function isPort(s: string): boolean {
  return /^(0|[1-9][0-9]{0,4})$/.test(s) && Number(s) <= 65535;
}

/** The eight 16-bit words of an IPv6 address (no embedded IPv4 form: tor never writes one). */
function expandIPv6(addr: string): number[] | undefined {
  if (addr.includes('.')) return undefined;
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const words = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  return words.map((w) => parseInt(w, 16));
}
