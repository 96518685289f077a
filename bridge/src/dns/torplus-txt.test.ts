// parseTorplusTxt / soleOnion: the pure reading of TXT answers, shared by the bridge and the client.
import { randomBytes } from 'node:crypto';
import { onion3AddressFromPublicKey } from '../ipfs/onion3/onion3-address.js';
import { parseTorplusTxt, soleOnion, torplusName, torplusRecord } from './torplus-txt.js';

const A = onion3AddressFromPublicKey(randomBytes(32));
const B = onion3AddressFromPublicKey(randomBytes(32));
/** A with one character changed: the right shape, a wrong checksum. */
const BAD = `${A.slice(0, 10)}${A[10] === 'a' ? 'b' : 'a'}${A.slice(11)}`;

describe('parseTorplusTxt', () => {
  it('reads torplus=<onion> with or without .onion, any case, whitespace around', () => {
    expect(parseTorplusTxt([[`torplus=${A}`]])).toEqual({ onions: [A], malformed: [] });
    expect(parseTorplusTxt([[`  TorPlus = ${A.toUpperCase()}.ONION  `]])).toEqual({ onions: [A], malformed: [] });
    expect(parseTorplusTxt([[`torplus=${A}.onion`], [`torplus=${A}`]])).toEqual({ onions: [A], malformed: [] });
  });

  it('concatenates the strings of one record, not across records', () => {
    expect(parseTorplusTxt([['torplus=', A.slice(0, 30), A.slice(30)]]).onions).toEqual([A]);
    expect(parseTorplusTxt([['torplus='], [A]])).toEqual({ onions: [], malformed: [{ value: '', reason: expect.stringMatching(/has 0 characters/) }] });
  });

  it('ignores other TXT records; keeps several onions apart', () => {
    expect(parseTorplusTxt([['v=spf1 -all'], ['google-site-verification=x'], [`torplus=${A}`]]).onions).toEqual([A]);
    expect(parseTorplusTxt([['v=spf1 -all']])).toEqual({ onions: [], malformed: [] });
    expect(parseTorplusTxt([])).toEqual({ onions: [], malformed: [] });
    expect(parseTorplusTxt([[`torplus=${A}`], [`torplus=${B}`]]).onions).toEqual([A, B]);
  });

  it('a bad checksum, a wrong length, foreign characters are malformed', () => {
    expect(parseTorplusTxt([[`torplus=${BAD}`]]).malformed[0]!.reason).toMatch(/wrong checksum/);
    expect(parseTorplusTxt([[`torplus=${A.slice(1)}`]]).malformed[0]!.reason).toMatch(/has 55 characters/);
    expect(parseTorplusTxt([['torplus=http://x.onion/']]).malformed[0]!.reason).toMatch(/outside base32/);
    expect(parseTorplusTxt([[`torplus=${A} ${B}`]]).malformed).toHaveLength(1);
  });
});

describe('soleOnion', () => {
  it('one onion, or why not', () => {
    expect(soleOnion(parseTorplusTxt([[`torplus=${A}`]]))).toEqual({ onion: A });
    expect(soleOnion(parseTorplusTxt([]))).toEqual({ problem: 'no torplus= TXT record' });
    expect(soleOnion(parseTorplusTxt([[`torplus=${A}`], [`torplus=${B}`]]))).toEqual({ problem: expect.stringMatching(/^several torplus= TXT records/) });
    expect(soleOnion(parseTorplusTxt([[`torplus=${A}`], [`torplus=${BAD}`]]))).toEqual({ problem: expect.stringMatching(/wrong checksum/) });
  });
});

it('names the record', () => {
  expect(torplusName('Example.COM.')).toBe('torplus.example.com');
  expect(torplusRecord('example.com', `${A.toUpperCase()}.onion`)).toBe(`torplus.example.com TXT "torplus=${A}"`);
});
