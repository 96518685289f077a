// Leadership of once-only jobs through PostgreSQL advisory locks: a bridge leads a job while its own
// connection holds the job's lock. PostgreSQL drops the lock when that connection ends (the bridge was
// killed, or its network cut), and the others, who try every few seconds, take it over. The holder checks
// its connection as often; when the check fails it stops the job before anyone else can start it, so two
// bridges never run one job for longer than a check interval.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { JobHandlers, Leadership } from './leadership.js';

export interface PgLeadershipOptions {
  url: string;
  /** How often a follower tries for the lock, and a leader checks it still holds it. Default 5 s. */
  intervalMs?: number;
  onError?: (err: Error) => void;
}

/** A stable 32-bit advisory lock key per job name (advisory keys are numbers). */
export function lockKey(job: string): number {
  return createHash('sha256').update(`torplus-job:${job}`).digest().readInt32BE(0);
}

export class PgLeadership implements Leadership {
  private readonly o: PgLeadershipOptions;
  private readonly held = new Set<string>();

  constructor(o: PgLeadershipOptions) {
    this.o = o;
  }

  leading(): string[] {
    return [...this.held];
  }

  follow(job: string, handlers: JobHandlers): () => Promise<void> {
    const key = lockKey(job);
    const every = this.o.intervalMs ?? 5000;
    let client: pg.Client | undefined;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let turn: Promise<void> = Promise.resolve();

    const drop = async (why?: Error) => {
      if (why) this.o.onError?.(why);
      const c = client;
      client = undefined;
      if (this.held.delete(job)) await Promise.resolve(handlers.lose()).catch((err: Error) => this.o.onError?.(err));
      await c?.end().catch(() => undefined);
    };
    const tick = async () => {
      if (stopped) return;
      if (client) {
        // Still ours? A failed check means the lock may be gone: stop before another bridge starts.
        try {
          await client.query('SELECT 1');
        } catch (err) {
          await drop(err as Error);
        }
        return;
      }
      const c = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: 5000, query_timeout: 5000, keepAlive: true, application_name: `torplus-bridge ${job}` });
      c.on('error', () => undefined); // reported by the next check
      try {
        await c.connect();
        const got = (await c.query('SELECT pg_try_advisory_lock($1) AS got', [key])).rows[0] as { got: boolean };
        if (!got.got || stopped) {
          await c.end().catch(() => undefined);
          return;
        }
        client = c;
        this.held.add(job);
        await handlers.lead();
      } catch (err) {
        await c.end().catch(() => undefined);
        if (client === c) await drop(err as Error);
        else this.o.onError?.(err as Error);
      }
    };
    const schedule = () => {
      if (stopped) return;
      turn = turn.then(tick).finally(() => {
        timer = setTimeout(schedule, every);
        timer.unref();
      });
    };
    schedule();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await turn;
      const c = client;
      if (c) await c.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
      await drop();
    };
  }
}
