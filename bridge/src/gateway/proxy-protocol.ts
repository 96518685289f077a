import { isIPv6 } from 'node:net';

/**
 * PROXY protocol v1, as tor writes it with `HiddenServiceExportCircuitID haproxy`:
 *   PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80\r\n
 * The last 32 bits of the source address are the circuit's global ID. We accept only this
 * shape: anything else did not come from tor, and the connection is closed.
 */

/** The longest v1 header the spec allows, CRLF included. */
export const MAX_PROXY_LINE = 107;

// tor's fixed prefix for the fake source address (src/core/or/connection_edge.c).
const TOR_PREFIX = [0xfc00, 0xdead, 0xbeef, 0x4dad];

export type ProxyLineResult =
  | { ok: true; circuitId: number; headerLength: number }
  | { ok: false; reason: string }
  | { ok: 'incomplete' };

/** Parses the PROXY line at the start of `buf`. `incomplete` means: read more bytes. */
export function parseProxyLine(buf: Buffer): ProxyLineResult {
  const end = buf.indexOf('\r\n');
  if (end === -1) {
    if (buf.length >= MAX_PROXY_LINE) return { ok: false, reason: 'no CRLF within 107 bytes' };
    const prefix = buf.subarray(0, 6).toString('latin1');
    if (!'PROXY '.startsWith(prefix)) return { ok: false, reason: 'does not start with "PROXY "' };
    return { ok: 'incomplete' };
  }
  if (end + 2 > MAX_PROXY_LINE) return { ok: false, reason: 'line longer than 107 bytes' };
  const line = buf.subarray(0, end).toString('latin1');
  const parts = line.split(' ');
  if (parts.length !== 6 || parts[0] !== 'PROXY') return { ok: false, reason: 'not a PROXY v1 line' };
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (proto !== 'TCP6') return { ok: false, reason: `unexpected protocol ${JSON.stringify(proto)}` };
  if (!isIPv6(src) || !isIPv6(dst)) return { ok: false, reason: 'addresses are not IPv6' };
  if (!isPort(sport) || !isPort(dport)) return { ok: false, reason: 'bad port' };
  const words = expandIPv6(src);
  if (!words || TOR_PREFIX.some((w, i) => words[i] !== w)) {
    return { ok: false, reason: 'source is not a tor circuit address' };
  }
  const circuitId = words[6]! * 0x10000 + words[7]!;
  return { ok: true, circuitId, headerLength: end + 2 };
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
