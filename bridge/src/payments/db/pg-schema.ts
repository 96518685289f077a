// The payments tables in PostgreSQL, versioned. Migrations run at start under an advisory lock, so
// bridges starting together migrate once; a database written by a newer bridge is refused.
import type pg from 'pg';

/** Append-only: entry i moves the schema from version i to i+1. Never edit a shipped entry. */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     token_hash BYTEA NOT NULL UNIQUE,         -- sha256 of the bearer token; the token itself is never stored
     visitor_key TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     credit_bytes BIGINT NOT NULL DEFAULT 0,
     used_bytes BIGINT NOT NULL DEFAULT 0      -- bytes used or leased by the bridges
   );
   CREATE TABLE payment_requests (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id),
     visitor_key TEXT NOT NULL,
     service TEXT NOT NULL,
     amount BIGINT NOT NULL,
     destination TEXT NOT NULL,
     memo_hash TEXT NOT NULL UNIQUE,
     credit_bytes BIGINT NOT NULL,
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'paid', 'expired'))
   );
   CREATE INDEX payment_requests_visitor ON payment_requests(visitor_key, status);
   CREATE TABLE receipts (
     operation_id TEXT PRIMARY KEY,            -- one credit per payment operation, whichever bridge saw it
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     session_id TEXT NOT NULL REFERENCES sessions(id),
     transaction_hash TEXT NOT NULL,
     from_account TEXT NOT NULL,
     amount BIGINT NOT NULL,
     credit_bytes BIGINT NOT NULL,
     via TEXT NOT NULL,
     tab_id TEXT,
     created_at BIGINT NOT NULL
   );
   CREATE INDEX receipts_session ON receipts(session_id);
   CREATE TABLE tabs (
     id TEXT PRIMARY KEY,
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     session_id TEXT NOT NULL REFERENCES sessions(id),
     payer TEXT NOT NULL,
     sequence BIGINT NOT NULL UNIQUE,          -- the payee account's sequence number reserved for this tab
     memo_hash TEXT NOT NULL UNIQUE,
     limit_stroops BIGINT NOT NULL,
     amount BIGINT NOT NULL DEFAULT 0,
     credited_bytes BIGINT NOT NULL DEFAULT 0,
     latest_xdr TEXT,
     max_time BIGINT,
     first_credit_at BIGINT,
     opened_at BIGINT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'settling', 'settled', 'failed', 'void', 'filled', 'lost')),
     settle_xdr TEXT,
     settled_hash TEXT,
     closed_at BIGINT,
     detail TEXT
   );
   CREATE UNIQUE INDEX tabs_one_open_per_payer ON tabs(payer) WHERE status = 'open';
   CREATE INDEX tabs_pending ON tabs(status, sequence);
   CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE request_notes (
     request_id TEXT NOT NULL REFERENCES payment_requests(id),
     transaction_hash TEXT NOT NULL,
     note TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (request_id, transaction_hash)
   );`,
];

/** Advisory lock keys (arbitrary, fixed): one for migrations, one for tab sequence numbers. */
export const LOCK_MIGRATE = 72_610_001;
export const LOCK_SEQUENCE = 72_610_002;

/** Brings the schema of `component` to the newest version this bridge knows, or refuses a newer one. */
export async function migratePg(pool: pg.Pool, component: string, migrations: readonly string[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_MIGRATE]);
    await client.query('CREATE TABLE IF NOT EXISTS torplus_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const row = (await client.query('SELECT version FROM torplus_schema WHERE component = $1', [component])).rows[0] as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > migrations.length) {
      throw new Error(`the ${component} tables in PostgreSQL were written by a newer bridge (schema ${current}, this one knows ${migrations.length}); upgrade this bridge`);
    }
    for (let v = current; v < migrations.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query(migrations[v]!);
        await client.query(`INSERT INTO torplus_schema (component, version) VALUES ($1, $2)
          ON CONFLICT (component) DO UPDATE SET version = excluded.version`, [component, v + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_MIGRATE]).catch(() => undefined);
    client.release();
  }
}
