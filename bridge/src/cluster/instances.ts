// The bridges serving one site: each backend bridge records itself (its own onion, what it serves) with a
// heartbeat, and the Onionbalance frontend (`torplus-bridge balance`) reads the live ones from here to
// write the master descriptor. The dashboard and /metrics show every instance. PostgreSQL only: one bridge
// alone needs no registry.
import pg from 'pg';
import { migratePg } from '../payments/db/pg-schema.js';

export interface InstanceBeat {
  /** A stable id per bridge (its backend onion address does for that). */
  id: string;
  /** The backend's own onion address (`….onion`), which the frontend lists. */
  onion: string;
  visitors: number;
  bytesServed: number;
}

export interface Instance extends InstanceBeat {
  /** Milliseconds since the epoch, by the database's clock (the bridges' clocks may differ). */
  lastBeat: number;
  startedAt: number;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bridge_instances (
     id TEXT PRIMARY KEY,
     onion TEXT NOT NULL,
     visitors BIGINT NOT NULL DEFAULT 0,
     bytes_served BIGINT NOT NULL DEFAULT 0,
     started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     last_beat TIMESTAMPTZ NOT NULL DEFAULT now()
   );`,
];

export class PgInstanceRegistry {
  private readonly pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  static async open(url: string, onError?: (err: Error) => void): Promise<PgInstanceRegistry> {
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000, query_timeout: 10_000, application_name: 'torplus-bridge instances' });
    pool.on('error', (err) => onError?.(err));
    try {
      await migratePg(pool, 'instances', MIGRATIONS);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PgInstanceRegistry(pool);
  }

  /** Records (or refreshes) this bridge. */
  async beat(b: InstanceBeat): Promise<void> {
    await this.pool.query(`INSERT INTO bridge_instances (id, onion, visitors, bytes_served) VALUES ($1, $2, $3, $4)
      ON CONFLICT (id) DO UPDATE SET onion = excluded.onion, visitors = excluded.visitors, bytes_served = excluded.bytes_served, last_beat = now()`,
    [b.id, b.onion, b.visitors, b.bytesServed]);
  }

  /** Takes this bridge out at once (a clean stop), rather than after its heartbeat goes stale. */
  async leave(id: string): Promise<void> {
    await this.pool.query('DELETE FROM bridge_instances WHERE id = $1', [id]);
  }

  /** Every instance that beat within `maxAgeMs`, oldest first (a stable order for the descriptor). */
  async live(maxAgeMs: number): Promise<Instance[]> {
    return (await this.all(`WHERE last_beat > now() - ($1::double precision * interval '1 millisecond')`, [maxAgeMs]));
  }

  /** Every instance known, live or not (the dashboard shows when each last beat). */
  async all(where = '', params: unknown[] = []): Promise<Instance[]> {
    const rows = (await this.pool.query(`SELECT id, onion, visitors, bytes_served, extract(epoch from started_at) * 1000 AS started,
      extract(epoch from last_beat) * 1000 AS beat FROM bridge_instances ${where} ORDER BY started_at, id`, params)).rows as Array<Record<string, string>>;
    return rows.map((r) => ({
      id: r.id!, onion: r.onion!, visitors: Number(r.visitors), bytesServed: Number(r.bytes_served), startedAt: Math.round(Number(r.started)), lastBeat: Math.round(Number(r.beat)),
    }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
