// The TXT record `torplus.<domain> TXT "torplus=<onion>"` that maps a publisher's domain to its onion.
// Shared by the bridge (is my record right?) and the client (which onion does this domain name?).
import { normaliseOnion3Address } from '../ipfs/onion3/onion3-address.js';

export interface TorplusTxt {
  /** The distinct valid onions named by `torplus=` records: 56 lower-case characters, no `.onion`. */
  onions: string[];
  /** `torplus=` records whose value is not a valid v3 onion address (bad checksum, version, length…). */
  malformed: { value: string; reason: string }[];
}

/**
 * Reads the `torplus=<onion>` records out of TXT answers (one array of character-strings per record, as
 * node's resolveTxt returns them; a record's strings are concatenated). The key is case-insensitive,
 * whitespace around key and value is ignored, the onion may end in `.onion`. Other TXT records are ignored.
 */
export function parseTorplusTxt(records: string[][]): TorplusTxt {
  const onions: string[] = [];
  const malformed: TorplusTxt['malformed'] = [];
  for (const chunks of records) {
    const m = /^\s*torplus\s*=(.*)$/is.exec(chunks.join(''));
    if (!m) continue;
    const value = m[1]!.trim();
    try {
      const onion = normaliseOnion3Address(value);
      if (!onions.includes(onion)) onions.push(onion);
    } catch (err) {
      malformed.push({ value, reason: (err as Error).message });
    }
  }
  return { onions, malformed };
}

/** The one onion a domain names, or why there is none usable (no record, several, a malformed one). */
export function soleOnion(parsed: TorplusTxt): { onion: string } | { problem: string } {
  if (parsed.malformed.length > 0) return { problem: parsed.malformed[0]!.reason.replace(/^not a/, 'the record names not a') };
  if (parsed.onions.length === 0) return { problem: 'no torplus= TXT record' };
  if (parsed.onions.length > 1) return { problem: `several torplus= TXT records name different onions (${parsed.onions.join(', ')})` };
  return { onion: parsed.onions[0]! };
}

/** `torplus.<domain>`: where the record lives. */
export function torplusName(domain: string): string {
  return `torplus.${domain.toLowerCase().replace(/\.$/, '')}`;
}

/** The exact record to publish, e.g. `torplus.example.com TXT "torplus=<onion>"`. */
export function torplusRecord(domain: string, onion: string): string {
  return `${torplusName(domain)} TXT "torplus=${onion.toLowerCase().replace(/\.onion$/, '')}"`;
}
