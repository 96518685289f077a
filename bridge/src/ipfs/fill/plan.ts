// Deciding room in the reserve before a fetch, from the peer's declared DAG size (the fetch is then held to
// it). Pure, so the policy is testable on its own: evict the least valuable filled DAGs first, only ones
// worth less than the candidate, and nothing at all unless the candidate then fits.
import { formatBytes } from './format.js';

export interface Evictable<K> {
  key: K;
  bytes: number;
  /** Current value (decayed score); lower goes first. */
  value: number;
}

export type RoomPlan<K> = { fits: true; evict: Evictable<K>[] } | { fits: false; reason: string };

export function planRoom<K>(o: { need: number; value: number; reserve: number; used: number; filled: readonly Evictable<K>[] }): RoomPlan<K> {
  if (o.need > o.reserve) {
    return { fits: false, reason: `it needs ${formatBytes(o.need)}, more than the whole fill reserve of ${formatBytes(o.reserve)}` };
  }
  // Negative when the reserve was lowered below what is filled: the deficit must be freed too.
  const free = o.reserve - o.used;
  if (o.need <= free) return { fits: true, evict: [] };
  const cheaper = o.filled.filter((f) => f.value < o.value).sort((a, b) => a.value - b.value);
  const evict: Evictable<K>[] = [];
  let freed = 0;
  for (const f of cheaper) {
    if (free + freed >= o.need) break;
    evict.push(f);
    freed += f.bytes;
  }
  if (free + freed >= o.need) return { fits: true, evict };
  const n = cheaper.length;
  return {
    fits: false,
    reason:
      `it needs ${formatBytes(o.need)}; ${formatBytes(Math.max(0, free))} of the reserve is free and evicting the ` +
      `${n} less valuable filled DAG${n === 1 ? '' : 's'} would free only ${formatBytes(freed)}`,
  };
}
