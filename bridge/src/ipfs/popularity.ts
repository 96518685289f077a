import type Database from 'better-sqlite3';

export type CidKind = 'root' | 'block';

export interface PopularityEntry {
  cid: string;
  kind: CidKind;
  /** Requests, decayed to now: each one counts half after a half-life. */
  count: number;
  /** All requests ever, undecayed. */
  requests: number;
}

export interface PopularityOptions {
  db: Database.Database;
  halfLifeMs: number;
  now?: () => number;
  /** How often counts are written to SQLite. Default 5 s. */
  flushMs?: number;
  /** Most CIDs remembered; the least requested are forgotten past it. Default 100,000. */
  maxEntries?: number;
}

interface Counter {
  kind: CidKind;
  score: number;
  at: number;
  requests: number;
  dirty: boolean;
}

/** Below this a CID is forgotten: about 7 half-lives after a single request. */
const FORGET_BELOW = 0.01;

/**
 * How often each CID is requested, with exponential decay so that old popularity fades. Counting
 * happens on the request path, so it is a map update; SQLite sees batched writes every few seconds.
 */
export class Popularity {
  private readonly counters = new Map<string, Counter>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(private readonly o: PopularityOptions) {
    this.now = o.now ?? Date.now;
    this.maxEntries = o.maxEntries ?? 100_000;
    this.upsert = o.db.prepare(
      `INSERT INTO popularity (cid, kind, score, at, requests) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (cid) DO UPDATE SET score = excluded.score, at = excluded.at, requests = excluded.requests, kind = excluded.kind`,
    );
    this.remove = o.db.prepare('DELETE FROM popularity WHERE cid = ?');
    for (const r of o.db.prepare('SELECT cid, kind, score, at, requests FROM popularity').all() as Array<{ cid: string; kind: CidKind; score: number; at: number; requests: number }>) {
      this.counters.set(r.cid, { kind: r.kind, score: r.score, at: Number(r.at), requests: Number(r.requests), dirty: false });
    }
    this.timer = setInterval(() => this.flush(), o.flushMs ?? 5000);
    this.timer.unref();
  }

  /** Counts `n` requests of `cid`. A root stays a root even when it is later served as a block. */
  count(cid: string, kind: CidKind, n = 1): void {
    const now = this.now();
    const c = this.counters.get(cid);
    if (c) {
      c.score = this.decayed(c, now) + n;
      c.at = now;
      c.requests += n;
      if (kind === 'root') c.kind = 'root';
      c.dirty = true;
    } else {
      this.counters.set(cid, { kind, score: n, at: now, requests: n, dirty: true });
    }
  }

  /** The decayed count of `cid` now; 0 when never requested. */
  score(cid: string): number {
    const c = this.counters.get(cid);
    return c ? this.decayed(c, this.now()) : 0;
  }

  /** The most requested CIDs first; the caller stops when it has enough it can serve. */
  *ranked(kind?: CidKind): Generator<PopularityEntry> {
    const now = this.now();
    const all: PopularityEntry[] = [];
    for (const [cid, c] of this.counters) {
      if (kind && c.kind !== kind) continue;
      all.push({ cid, kind: c.kind, count: this.decayed(c, now), requests: c.requests });
    }
    all.sort((a, b) => b.count - a.count || b.requests - a.requests || (a.cid < b.cid ? -1 : 1));
    yield* all;
  }

  /** Writes changed counts, and forgets the faded and the least requested past maxEntries. */
  flush(): void {
    const now = this.now();
    const forget: string[] = [];
    for (const [cid, c] of this.counters) if (this.decayed(c, now) < FORGET_BELOW) forget.push(cid);
    if (this.counters.size - forget.length > this.maxEntries) {
      const rest = [...this.counters].filter(([cid]) => !forget.includes(cid)).sort((a, b) => this.decayed(a[1], now) - this.decayed(b[1], now));
      forget.push(...rest.slice(0, rest.length - this.maxEntries).map(([cid]) => cid));
    }
    this.o.db.transaction(() => {
      for (const cid of forget) {
        this.counters.delete(cid);
        this.remove.run(cid);
      }
      for (const [cid, c] of this.counters) {
        if (!c.dirty) continue;
        this.upsert.run(cid, c.kind, c.score, c.at, c.requests);
        c.dirty = false;
      }
    })();
  }

  close(): void {
    clearInterval(this.timer);
    if (this.o.db.open) this.flush();
  }

  private decayed(c: Counter, now: number): number {
    return c.score * 2 ** (-(Math.max(0, now - c.at)) / this.o.halfLifeMs);
  }
}
