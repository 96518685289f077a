import { decideRange } from './range.js';

describe('decideRange', () => {
  it.each([
    ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-500', 100, { kind: 'partial', start: 0, end: 99 }], // longer suffix than the file: all of it
    ['bytes=50-5000', 100, { kind: 'partial', start: 50, end: 99 }], // end clamped
    ['bytes = 1 - 2', 100, { kind: 'partial', start: 1, end: 2 }], // optional whitespace
    ['BYTES=1-2', 100, { kind: 'partial', start: 1, end: 2 }], // the unit is case-insensitive
    ['bytes=99-99', 100, { kind: 'partial', start: 99, end: 99 }],
  ])('%s of %i bytes → %j', (header, size, expected) => {
    expect(decideRange(header, size)).toEqual(expected);
  });

  it.each([
    ['bytes=100-', 100],
    ['bytes=100-200', 100],
    ['bytes=-0', 100],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
  ])('%s of %i bytes is unsatisfiable', (header, size) => {
    expect(decideRange(header, size)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([undefined, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=a-b', 'bytes=1-2-3', 'bytes=0x1-2'])(
    '%p means the whole representation',
    (header) => {
      expect(decideRange(header, 100)).toEqual({ kind: 'full' });
    },
  );
});
