// Leadership of once-only jobs on a real PostgreSQL: two bridges competing for one job, one leads; it
// hands over when the leader stops, when its connection is killed (as when the bridge dies), and after
// PostgreSQL itself went away and came back.
import pg from 'pg';
import { startPostgres, type Postgres } from '../devnet/postgres.js';
import { lockKey, PgLeadership } from './pg-leadership.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);
afterAll(async () => postgres?.destroy());

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function bridge(url: string) {
  const events: string[] = [];
  const l = new PgLeadership({ url, intervalMs: 200 });
  let leading = false;
  const stop = l.follow('stream', { lead: () => void ((leading = true), events.push('lead')), lose: () => void ((leading = false), events.push('lose')) });
  return { l, stop, events, leading: () => leading };
}

describe('PgLeadership', () => {
  it('lets one of two bridges lead a job, and hands it over when the leader stops', async () => {
    const url = await postgres.createDatabase('lead_stop');
    const [a, b] = [bridge(url), bridge(url)];
    await until('a leader', () => a.leading() || b.leading());
    await new Promise((r) => setTimeout(r, 1000)); // five more tries by the other: still one leader
    expect([a.leading(), b.leading()].filter(Boolean)).toHaveLength(1);
    const [leader, other] = a.leading() ? [a, b] : [b, a];
    expect(leader.l.leading()).toEqual(['stream']);
    await leader.stop();
    expect(leader.events.at(-1)).toBe('lose');
    await until('the other to lead', () => other.leading());
    await other.stop();
  });

  it('hands a job over when the leader’s connection is killed, as when the bridge dies', async () => {
    const url = await postgres.createDatabase('lead_kill');
    const [a, b] = [bridge(url), bridge(url)];
    await until('a leader', () => a.leading() || b.leading());
    const [leader, other] = a.leading() ? [a, b] : [b, a];
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::oid`, [lockKey('stream') >>> 0]);
    await admin.end();
    await until('the old leader to stop', () => !leader.leading());
    await until('the other to lead', () => other.leading());
    await Promise.all([a.stop(), b.stop()]);
  });

  it('stops leading while PostgreSQL is away, and leads again once it is back', async () => {
    const url = await postgres.createDatabase('lead_down');
    const a = bridge(url);
    await until('a to lead', () => a.leading());
    await postgres.stop();
    await until('a to stop leading', () => !a.leading());
    await postgres.start();
    await until('a to lead again', () => a.leading());
    expect(a.events).toEqual(['lead', 'lose', 'lead']);
    await a.stop();
  });
});
