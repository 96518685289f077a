// The record of what fill stored: one row per filled root. It is what makes the reserve accounting and
// eviction survive restarts (the pins alone do not say how many bytes they hold), and it is the ONLY list of
// eviction candidates, so the bridge's own content, which is never in it, can never be evicted.
import type Database from 'better-sqlite3';
import { CID } from 'multiformats/cid';

export interface FilledRecord {
  cid: CID;
  /** The peer it was filled from. */
  peer: string;
  /** Sum of the DAG's block bytes, as received and verified. */
  bytes: number;
  blocks: number;
  /** The peer's request count when it was filled (or last seen again in a top list). */
  score: number;
  /** When `score` was taken, ms since the epoch; it decays from there. */
  scoredAt: number;
  /** ms since the epoch. */
  filledAt: number;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS ipfs_filled (
  cid TEXT PRIMARY KEY,          -- CIDv1 string of the filled root
  peer TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  blocks INTEGER NOT NULL,
  score REAL NOT NULL,
  scored_at INTEGER NOT NULL,
  filled_at INTEGER NOT NULL
)`;

interface Row {
  cid: string;
  peer: string;
  bytes: number | bigint;
  blocks: number | bigint;
  score: number;
  scored_at: number | bigint;
  filled_at: number | bigint;
}

const keyOf = (cid: CID): string => cid.toV1().toString();

/** Prepared statements on a handle owned by the caller (its pragmas, e.g. WAL, are the caller's choice). */
export class FilledTable {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    // The caller may read integers as bigint (defaultSafeIntegers); rows are converted in fromRow either way.
    this.stmts = {
      all: db.prepare('SELECT * FROM ipfs_filled ORDER BY filled_at, cid'),
      get: db.prepare('SELECT * FROM ipfs_filled WHERE cid = ?'),
      insert: db.prepare(`INSERT INTO ipfs_filled (cid, peer, bytes, blocks, score, scored_at, filled_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (cid) DO UPDATE SET peer = excluded.peer, bytes = excluded.bytes, blocks = excluded.blocks,
        score = excluded.score, scored_at = excluded.scored_at, filled_at = excluded.filled_at`),
      rescore: db.prepare('UPDATE ipfs_filled SET score = ?, scored_at = ? WHERE cid = ?'),
      remove: db.prepare('DELETE FROM ipfs_filled WHERE cid = ?'),
      used: db.prepare('SELECT coalesce(sum(bytes), 0) AS used FROM ipfs_filled'),
    };
  }

  all(): FilledRecord[] {
    return (this.stmts.all.all() as Row[]).map(fromRow);
  }

  get(cid: CID): FilledRecord | undefined {
    const row = this.stmts.get.get(keyOf(cid)) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  insert(r: FilledRecord): void {
    this.stmts.insert.run(keyOf(r.cid), r.peer, r.bytes, r.blocks, r.score, r.scoredAt, r.filledAt);
  }

  rescore(cid: CID, score: number, at: number): void {
    this.stmts.rescore.run(score, at, keyOf(cid));
  }

  remove(cid: CID): void {
    this.stmts.remove.run(keyOf(cid));
  }

  usedBytes(): number {
    return Number((this.stmts.used.get() as { used: number | bigint }).used);
  }
}

function fromRow(r: Row): FilledRecord {
  return {
    cid: CID.parse(r.cid),
    peer: r.peer,
    bytes: Number(r.bytes),
    blocks: Number(r.blocks),
    score: Number(r.score),
    scoredAt: Number(r.scored_at),
    filledAt: Number(r.filled_at),
  };
}
