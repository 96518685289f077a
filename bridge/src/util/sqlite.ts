import Database from 'better-sqlite3';
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Opens (creating if needed) `dir/file` as a private SQLite database: the folder 0700, the file 0600,
 * WAL. What the bridge keeps (receipts, session hashes, what visitors read) is nobody else's business.
 */
export function openPrivateDatabase(dir: string, file: string, options: { synchronous?: 'FULL' | 'NORMAL' } = {}): Database.Database {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The folder may predate us with a looser mode.
  if (statSync(dir).mode & 0o077) chmodSync(dir, 0o700);
  const path = join(dir, file);
  // Create the file 0600 before SQLite does: SQLite gives the -wal and -shm files the database's mode.
  const fd = openSync(path, 'a', 0o600);
  fchmodSync(fd, 0o600);
  closeSync(fd);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Runs the schema steps a database has not seen yet. Entry i moves user_version i to i+1. */
export function migrate(db: Database.Database, name: string, migrations: readonly string[]): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > migrations.length) {
    throw new Error(`${name} was written by a newer bridge (schema ${current}, this one knows ${migrations.length})`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
