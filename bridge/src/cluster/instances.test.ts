// The instance registry on a real PostgreSQL: bridges beat, the frontend reads the live ones, a bridge
// that stops beating drops out, one that leaves drops out at once.
import { startPostgres, type Postgres } from '../devnet/postgres.js';
import { PgInstanceRegistry } from './instances.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);
afterAll(async () => postgres?.destroy());

const onion = (c: string) => `${c.repeat(56)}.onion`;

it('lists the bridges that beat recently, in the order they started, and forgets one that left', async () => {
  const url = await postgres.createDatabase('instances');
  const [a, b] = await Promise.all([PgInstanceRegistry.open(url), PgInstanceRegistry.open(url)]);
  try {
    await a.beat({ id: 'a', onion: onion('a'), visitors: 3, bytesServed: 1000 });
    await b.beat({ id: 'b', onion: onion('b'), visitors: 1, bytesServed: 10 });
    await a.beat({ id: 'a', onion: onion('a'), visitors: 4, bytesServed: 2000 });
    expect((await b.live(60_000)).map((i) => [i.id, i.onion, i.visitors, i.bytesServed])).toEqual([['a', onion('a'), 4, 2000], ['b', onion('b'), 1, 10]]);
    // A heartbeat older than the limit (by the database's own clock) is not live.
    await new Promise((r) => setTimeout(r, 2500));
    await b.beat({ id: 'b', onion: onion('b'), visitors: 1, bytesServed: 10 });
    expect((await a.live(2000)).map((i) => i.id)).toEqual(['b']);
    expect((await a.all()).map((i) => i.id)).toEqual(['a', 'b']);
    await b.leave('b');
    expect((await a.live(60_000)).map((i) => i.id)).toEqual(['a']);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
