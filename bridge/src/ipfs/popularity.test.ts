import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIpfsDb } from './ipfs-db.js';
import { Popularity } from './popularity.js';

const HOUR = 3600_000;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'pop-'));
  let t = 1_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const open = () => {
    const db = openIpfsDb(dir);
    return { db, pop: new Popularity({ db, halfLifeMs: 24 * HOUR, now: clock.now, flushMs: 60_000 }) };
  };
  return { dir, clock, open };
}

describe('Popularity', () => {
  it('ranks by requests, and a count halves every half-life', () => {
    const { clock, open } = setup();
    const { pop, db } = open();
    for (let i = 0; i < 8; i++) pop.count('old', 'root');
    clock.advance(48 * HOUR); // two half-lives: 8 → 2
    pop.count('new', 'root');
    pop.count('new', 'root');
    pop.count('new', 'root');
    expect(pop.score('old')).toBeCloseTo(2, 5);
    const top = [...pop.ranked()];
    expect(top.map((e) => e.cid)).toEqual(['new', 'old']);
    expect(top[1]).toMatchObject({ requests: 8, kind: 'root' });
    pop.close();
    db.close();
  });

  it('survives a restart through SQLite, decay included', () => {
    const { clock, open } = setup();
    const a = open();
    a.pop.count('bafyA', 'root', 4);
    a.pop.count('bafyB', 'block');
    a.pop.close();
    a.db.close();
    clock.advance(24 * HOUR);
    const b = open();
    expect(b.pop.score('bafyA')).toBeCloseTo(2, 5);
    expect([...b.pop.ranked('block')].map((e) => e.cid)).toEqual(['bafyB']);
    b.pop.close();
    b.db.close();
  });

  it('forgets CIDs whose count has faded, and keeps at most maxEntries', () => {
    const { clock, dir } = setup();
    const db = openIpfsDb(dir);
    const pop = new Popularity({ db, halfLifeMs: HOUR, now: clock.now, maxEntries: 2 });
    pop.count('faded', 'root');
    clock.advance(10 * HOUR);
    pop.count('a', 'block', 3);
    pop.count('b', 'block', 2);
    pop.count('c', 'block', 1);
    pop.flush();
    expect([...pop.ranked()].map((e) => e.cid)).toEqual(['a', 'b']);
    const rows = db.prepare('SELECT cid FROM popularity ORDER BY cid').all() as Array<{ cid: string }>;
    expect(rows.map((r) => r.cid)).toEqual(['a', 'b']);
    pop.close();
    db.close();
  });
});
