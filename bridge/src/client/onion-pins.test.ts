// Pins: first use pins, the same onion passes, another onion is refused (exit 5, a loud message naming both
// onions and the way to accept), --accept-new-onion replaces the pin. The state folder is 0700, files 0600.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_ONION_CHANGED, OnionChangedError, OnionPins, stateDir } from './onion-pins.js';

const A = 'a'.repeat(56);
const B = 'b'.repeat(56);
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'torplus-pins-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('the state folder: $TORPLUS_HOME, else ~/.torplus, created 0700', () => {
  const home = stateDir({ TORPLUS_HOME: join(dir, 'state') });
  expect(home).toBe(join(dir, 'state'));
  expect(statSync(home).mode & 0o777).toBe(0o700);
  expect(stateDir({ HOME: dir })).toBe(join(dir, '.torplus'));
  expect(statSync(join(dir, '.torplus')).mode & 0o777).toBe(0o700);
});

it('pins on first use, passes the same onion, refuses another, accepts it when told', () => {
  const pins = new OnionPins(dir);
  expect(pins.check('Example.COM', A, false, new Date('2025-01-01T00:00:00Z'))).toBe('pinned');
  expect(statSync(pins.file).mode & 0o777).toBe(0o600);
  expect(pins.get('example.com')).toEqual({ onion: A, since: '2025-01-01T00:00:00.000Z' });
  expect(pins.check('example.com', A)).toBe('same');
  let e: unknown;
  try {
    pins.check('example.com', B);
  } catch (err) {
    e = err;
  }
  expect(e).toBeInstanceOf(OnionChangedError);
  expect((e as OnionChangedError).exitCode).toBe(EXIT_ONION_CHANGED);
  const m = (e as Error).message;
  expect(m).toMatch(/^WARNING: THE ONION OF example\.com HAS CHANGED!/);
  expect(m).toContain(`pinned since 2025-01-01T00:00:00.000Z: ${A}.onion`);
  expect(m).toContain(`${B}.onion`);
  expect(m).toContain('--accept-new-onion');
  expect(pins.get('example.com')!.onion).toBe(A); // unchanged
  expect(pins.check('example.com', B, true)).toBe('accepted');
  expect(pins.get('example.com')!.onion).toBe(B);
  expect(pins.check('example.com', B)).toBe('same');
  // Other domains are independent.
  expect(pins.check('other.org', A)).toBe('pinned');
  expect(Object.keys(JSON.parse(readFileSync(pins.file, 'utf8')))).toEqual(['example.com', 'other.org']);
});
