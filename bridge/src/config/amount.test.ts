import { formatXlm, parseXlm } from './amount.js';

describe('XLM amounts', () => {
  it.each([
    ['0', 0n],
    ['1', 10_000_000n],
    ['1.5', 15_000_000n],
    ['0.0000001', 1n],
    ['922337203685.4775807', 9_223_372_036_854_775_807n],
  ])('parses %s exactly', (text, stroops) => {
    expect(parseXlm(text)).toBe(stroops);
    expect(parseXlm(formatXlm(stroops))).toBe(stroops);
  });

  it.each(['', '-1', '1.', '.5', '1e3', '01', '1.00000001', 'abc', '1,5'])('rejects %j', (text) => {
    expect(parseXlm(text)).toBeUndefined();
  });

  it('formats as Horizon does', () => {
    expect(formatXlm(15_000_000n)).toBe('1.5000000');
    expect(formatXlm(1n)).toBe('0.0000001');
  });
});
