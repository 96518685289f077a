import type Database from 'better-sqlite3';
import { migrate, openPrivateDatabase } from '../util/sqlite.js';

export const IPFS_DB_FILE = 'ipfs.sqlite';

// Append-only: entry i migrates user_version i to i+1. Never edit a shipped entry. (fill/ keeps its
// own table, created by itself, in the same file.)
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE versions (
     root TEXT PRIMARY KEY,                    -- a published root of WWW_DIR, pinned while kept
     published_at INTEGER NOT NULL
   );
   CREATE TABLE popularity (
     cid TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('root', 'block')),
     score REAL NOT NULL,                      -- decayed request count as of 'at'
     at INTEGER NOT NULL,
     requests INTEGER NOT NULL                 -- all-time requests, undecayed
   );`,
];

/**
 * DATA_DIR/ipfs/ipfs.sqlite: the published versions and the request counts. synchronous=NORMAL:
 * unlike receipts, losing the last second of counts to a power cut costs nothing that matters.
 */
export function openIpfsDb(dir: string): Database.Database {
  const db = openPrivateDatabase(dir, IPFS_DB_FILE, { synchronous: 'NORMAL' });
  migrate(db, db.name, MIGRATIONS);
  return db;
}
