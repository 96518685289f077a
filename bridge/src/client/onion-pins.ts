// Trust on first use for domain → onion, as SSH does with host keys: the first onion a domain names is pinned
// in the client's state folder; a later different onion is refused (OnionChangedError, exit 5) until the
// visitor accepts it (--accept-new-onion). The state folder: $TORPLUS_HOME, else ~/.torplus (0700).
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ClientError } from './errors.js';

/** The exit code when a domain's onion changed and was not accepted. */
export const EXIT_ONION_CHANGED = 5;

/** The client's state folder, created 0700. */
export function stateDir(env: Record<string, string | undefined>): string {
  const dir = env.TORPLUS_HOME || join(env.HOME || homedir(), '.torplus');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/** Reads a JSON object file of the state folder ({} when absent or unreadable). */
export function readState<T>(file: string): Record<string, T> {
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, T>) : {};
  } catch {
    return {};
  }
}

/** Writes a JSON object file atomically, 0600. */
export function writeState(file: string, value: Record<string, unknown>): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export interface Pin {
  onion: string;
  /** ISO time of pinning. */
  since: string;
}

export class OnionChangedError extends ClientError {
  readonly domain: string;
  readonly pinned: Pin;
  readonly onion: string;
  readonly file: string;

  constructor(domain: string, pinned: Pin, onion: string, file: string) {
    super(
      [
        `WARNING: THE ONION OF ${domain} HAS CHANGED!`,
        `pinned since ${pinned.since}: ${pinned.onion}.onion`,
        `the DNS now names:      ${onion}.onion`,
        'Someone may be redirecting you (a forged or hijacked DNS record), or the publisher moved to a new onion.',
        `Refused. If you trust the change, run again with --accept-new-onion (the pins are in ${file}).`,
      ].join('\ntorplus: '),
      EXIT_ONION_CHANGED,
    );
    this.name = 'OnionChangedError';
    this.domain = domain;
    this.pinned = pinned;
    this.onion = onion;
    this.file = file;
  }
}

export type PinOutcome = 'pinned' | 'same' | 'accepted';

/** The pins of one state folder: `pins.json`, { domain: { onion, since } }. */
export class OnionPins {
  readonly file: string;

  constructor(dir: string) {
    this.file = join(dir, 'pins.json');
  }

  get(domain: string): Pin | undefined {
    return readState<Pin>(this.file)[domain.toLowerCase()];
  }

  /**
   * Checks `onion` against the pin of `domain`: pins it on first use; throws OnionChangedError when it differs,
   * unless `acceptNew` (then the pin is replaced).
   */
  check(domain: string, onion: string, acceptNew = false, now = new Date()): PinOutcome {
    const key = domain.toLowerCase();
    const pins = readState<Pin>(this.file);
    const pin = pins[key];
    if (pin?.onion === onion) return 'same';
    if (pin && !acceptNew) throw new OnionChangedError(key, pin, onion, this.file);
    pins[key] = { onion, since: now.toISOString() };
    writeState(this.file, pins);
    return pin ? 'accepted' : 'pinned';
  }
}
