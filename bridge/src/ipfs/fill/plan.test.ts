import { planRoom } from './plan.js';

const f = (key: string, bytes: number, value: number) => ({ key, bytes, value });

describe('planRoom', () => {
  it('fits without evicting when the reserve has room', () => {
    expect(planRoom({ need: 40, value: 1, reserve: 100, used: 60, filled: [f('a', 60, 0)] })).toEqual({ fits: true, evict: [] });
  });

  it('evicts the least valuable first, and no more than needed', () => {
    const plan = planRoom({ need: 50, value: 10, reserve: 100, used: 90, filled: [f('b', 30, 5), f('a', 30, 1), f('c', 30, 2)] });
    expect(plan).toEqual({ fits: true, evict: [f('a', 30, 1), f('c', 30, 2)] });
  });

  it('never evicts content worth as much as the candidate or more, and evicts nothing if it still would not fit', () => {
    const plan = planRoom({ need: 50, value: 3, reserve: 100, used: 90, filled: [f('a', 30, 1), f('b', 30, 3), f('c', 30, 4)] });
    expect(plan.fits).toBe(false);
    if (!plan.fits) expect(plan.reason).toBe('it needs 50 B; 10 B of the reserve is free and evicting the 1 less valuable filled DAG would free only 30 B');
  });

  it('refuses what is larger than the whole reserve', () => {
    const plan = planRoom({ need: 2048, value: 1e9, reserve: 1024, used: 0, filled: [] });
    expect(plan).toEqual({ fits: false, reason: 'it needs 2.0 KiB, more than the whole fill reserve of 1.0 KiB' });
  });

  it('frees a deficit when the reserve was lowered', () => {
    const plan = planRoom({ need: 0, value: Infinity, reserve: 50, used: 90, filled: [f('a', 30, 2), f('b', 30, 1), f('c', 30, 3)] });
    expect(plan).toEqual({ fits: true, evict: [f('b', 30, 1), f('a', 30, 2)] });
  });
});
