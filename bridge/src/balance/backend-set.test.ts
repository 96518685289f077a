// The live-set diffing: onionbalance is restarted only when the SET of live backends changes.
import { diffBackends } from './backend-set.js';

const o = (c: string): string => `${c.repeat(56)}.onion`;
const master = o('m');

test('the first live set is a change: everything added, sorted', () => {
  expect(diffBackends([], [o('b'), o('a')], master)).toEqual({
    next: [o('a'), o('b')], changed: true, added: [o('a'), o('b')], removed: [], keptLast: false, ignored: [],
  });
});

test('the same set in another order, with duplicates, upper case or without .onion, is no change', () => {
  const d = diffBackends([o('a'), o('b')], [o('b'), 'a'.repeat(56), o('B').toUpperCase(), o('a')], master);
  expect(d).toMatchObject({ next: [o('a'), o('b')], changed: false, added: [], removed: [] });
});

test('a backend that stopped beating is removed, a new one added', () => {
  expect(diffBackends([o('a'), o('b')], [o('b')], master)).toMatchObject({ next: [o('b')], changed: true, added: [], removed: [o('a')] });
  expect(diffBackends([o('b')], [o('b'), o('c')], master)).toMatchObject({ next: [o('b'), o('c')], changed: true, added: [o('c')], removed: [] });
});

test('no live backend keeps the last set (onionbalance refuses an empty list) and says so', () => {
  expect(diffBackends([o('a'), o('b')], [], master)).toEqual({
    next: [o('a'), o('b')], changed: false, added: [], removed: [], keptLast: true, ignored: [],
  });
  expect(diffBackends([], [], master)).toMatchObject({ next: [], changed: false, keptLast: true });
});

test('the master itself and malformed entries are ignored, with the reason', () => {
  const d = diffBackends([o('a')], [o('a'), master, 'not-an-onion'], master);
  expect(d).toMatchObject({ next: [o('a')], changed: false });
  expect(d.ignored).toEqual([
    { onion: master, why: expect.stringMatching(/master address/) },
    { onion: 'not-an-onion', why: 'not a v3 onion address' },
  ]);
  // Only the master listed: as good as none.
  expect(diffBackends([o('a')], [master], master)).toMatchObject({ next: [o('a')], changed: false, keptLast: true });
});
