// The live backends the registry reports, against the set onionbalance was last given. onionbalance 0.2.2
// reads its backends only at start and a restart costs a new descriptor fetch (and, on the test network,
// ~20 s before it publishes again), so it is restarted only when the SET changes: not for a different
// order, a duplicate, or a poll that says the same thing.
import { normalizeOnion } from '../tor/onionbalance-instance.js';

export interface BackendDiff {
  /** What onionbalance should list now: sorted, no duplicates. Equal to `previous` unless `changed`. */
  next: string[];
  changed: boolean;
  added: string[];
  removed: string[];
  /**
   * No live backend at all: `next` stays the previous set. onionbalance refuses an empty list, and the last
   * descriptor it published is the best a visitor can get until a backend comes back.
   */
  keptLast: boolean;
  /** Registry entries left out, and why (not an onion address; the master itself, which onionbalance refuses). */
  ignored: Array<{ onion: string; why: string }>;
}

/**
 * Compare the live backends (as the registry lists them) with the set onionbalance runs with. `master` is
 * never a backend: onionbalance exits on a config listing its own address ("Did you configure your frontend
 * as an instance?"), which a bridge still serving the old single-bridge key would cause.
 */
export function diffBackends(previous: readonly string[], live: readonly string[], master: string): BackendDiff {
  const ignored: BackendDiff['ignored'] = [];
  const masterOnion = normalizeOnion(master);
  const seen = new Set<string>();
  for (const raw of live) {
    let onion: string;
    try {
      onion = normalizeOnion(raw);
    } catch {
      ignored.push({ onion: raw, why: 'not a v3 onion address' });
      continue;
    }
    if (onion === masterOnion) {
      ignored.push({ onion, why: "the master address itself (a bridge still serving the site's own key?)" });
      continue;
    }
    seen.add(onion);
  }
  const prev = [...new Set(previous.map(normalizeOnion))].sort();
  if (seen.size === 0) return { next: prev, changed: false, added: [], removed: [], keptLast: true, ignored };
  const next = [...seen].sort();
  const added = next.filter((o) => !prev.includes(o));
  const removed = prev.filter((o) => !seen.has(o));
  return { next, changed: added.length > 0 || removed.length > 0, added, removed, keptLast: false, ignored };
}
