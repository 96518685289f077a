/**
 * Header filtering between visitor and upstream. Hop-by-hop headers (RFC 9110 §7.6.1) belong to
 * one connection and are never forwarded. Headers that could identify a visitor are dropped on
 * the way in, and the bridge adds none: the circuit ID stays inside the bridge.
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// The bridge's session token (header or cookie) is a bearer secret between the visitor and the bridge:
// the site behind it never sees it (its logs could leak it).
const IDENTIFYING = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via', 'client-ip', 'true-client-ip', 'x-client-ip', 'torplus-session']);
const SESSION_COOKIE_PAIR = /(?:^|;\s*)torplus_session=[^;]*/g;

/** A Cookie header without the bridge's session cookie; undefined when nothing else is left. */
export function withoutSessionCookie(value: string): string | undefined {
  const rest = value.replace(SESSION_COOKIE_PAIR, '').replace(/^\s*;\s*/, '').trim();
  return rest === '' ? undefined : rest;
}

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      tokens ??= new Set();
      for (const t of raw[i + 1]!.split(',')) tokens.add(t.trim().toLowerCase());
    }
  }
  return tokens;
}

/** Filters a flat rawHeaders list [name, value, name, value, …] into a new flat list. */
export function filterRawHeaders(raw: readonly string[], direction: 'request' | 'response'): string[] {
  const extra = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || extra?.has(name)) continue;
    if (direction === 'request') {
      if (IDENTIFYING.has(name)) continue;
      if (name === 'cookie' && raw[i + 1]!.includes('torplus_session=')) {
        const rest = withoutSessionCookie(raw[i + 1]!);
        if (rest !== undefined) out.push(raw[i]!, rest);
        continue;
      }
    }
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
