// onionbalance 0.2.2's log lines (copied from its output on the private network).
import { ObLogClassifier, introsFrom, isInitialized, loadedOnion, parseObLine, uploadedDescriptor } from './onionbalance-log.js';

const m = `${'m'.repeat(56)}.onion`;

test('parses the logging prefix', () => {
  expect(parseObLine('2026-12-01 10:00:00,123 [INFO]: \t Intro set modified')).toEqual({ level: 'info', message: 'Intro set modified' });
  expect(parseObLine('Traceback (most recent call last):')).toEqual({ level: undefined, message: 'Traceback (most recent call last):' });
});

test('recognises start-up, the master address and uploads', () => {
  expect(isInitialized(parseObLine('2026-12-01 10:00:00,123 [WARNING]: Onionbalance initialized (stem version: 1.8.1) (tor version: 0.4.9.11)!').message)).toBe(true);
  expect(loadedOnion(parseObLine(`2026-12-01 10:00:00,123 [WARNING]: Loaded onion ${m} from /t/onionbalance/master.key`).message)).toBe(m);
  expect(uploadedDescriptor(parseObLine(`2026-12-01 10:00:20,001 [INFO]: Uploading second descriptor for ${m} to ['AB', 'CD']`).message)).toEqual({ descriptor: 'second', onion: m });
  expect(uploadedDescriptor('Service x created first descriptor (4 intro points)')).toBeUndefined();
  expect(introsFrom('We got 6 intros from 2 instances. We want 4 intros ourselves (got: 4)')).toEqual({ intros: 6, instances: 2 });
});

test('errors and real warnings at warn, routine start-up warnings and the rest at debug, tracebacks with their line', () => {
  const c = new ObLogClassifier();
  const level = (l: string): string => c.level(parseObLine(l));
  expect(level('2026-12-01 10:00:00,1 [WARNING]: Onionbalance initialized (stem version: 1.8.1) (tor version: 0.4.9.11)!')).toBe('debug');
  expect(level(`2026-12-01 10:00:00,1 [WARNING]: Loaded onion ${m} from /k`)).toBe('debug');
  expect(level('2026-12-01 10:00:00,1 [WARNING]: Initializing onionbalance (version: 0.2.2)...')).toBe('debug');
  expect(level(`2026-12-01 10:00:00,1 [WARNING]: Loaded instance ${'a'.repeat(56)}`)).toBe('debug');
  expect(level('2026-12-01 10:00:00,1 [WARNING]: No live consensus. Waiting before fetching descriptors...')).toBe('warn');
  expect(level("2026-12-01 10:00:00,1 [WARNING]: Service private key not in OBv3 format ('x'). Trying tor's format...")).toBe('debug');
  expect(level('2026-12-01 10:00:00,1 [INFO]: [*] fetch_instance_descriptors() called [*]')).toBe('debug');
  expect(level('2026-12-01 10:00:00,1 [WARNING]: Descriptor upload failed for frontend x to y (UPLOAD_REJECTED)')).toBe('warn');
  expect(level('2026-12-01 10:00:00,1 [ERROR]: Unable to connect to Tor control port: refused')).toBe('warn');
  expect(level('  File "/usr/lib/python3/dist-packages/onionbalance/hs_v3/service.py", line 1')).toBe('warn');
  expect(level('2026-12-01 10:00:00,1 [INFO]: Received new consensus!')).toBe('debug');
  expect(level('Traceback (most recent call last):')).toBe('warn');
  expect(level('KeyError: x')).toBe('warn');
});
