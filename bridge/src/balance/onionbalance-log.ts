// Reading Debian onionbalance 0.2.2's log (stderr, Python logging: `2026-12-01 10:00:00,123 [INFO]: message`).
// It has no other way to say what it did, so these lines are how the frontend knows it is up and when it
// published, and which of its lines belong in the bridge's log at warn rather than debug.

export type ObLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';

export interface ObLine {
  /** undefined for a line without the logging prefix (a traceback, a print()). */
  level: ObLevel | undefined;
  message: string;
}

const PREFIX = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]: ?(.*)$/;

export function parseObLine(line: string): ObLine {
  const m = PREFIX.exec(line);
  if (!m) return { level: undefined, message: line };
  return { level: m[1]!.toLowerCase() as ObLevel, message: m[2]!.trim() };
}

/** Logged once it has loaded the config and connected to tor: from here on it runs its schedule. */
export function isInitialized(message: string): boolean {
  return /^Onionbalance initialized\b/.test(message);
}

/** `Loaded onion <address> from <key file>`: the address its key gives, or undefined. */
export function loadedOnion(message: string): string | undefined {
  return /^Loaded onion (\S+) from /.exec(message)?.[1];
}

/**
 * `Uploading first descriptor for <master> to [<hsdirs>]` (hs_v3/service.py): it has built a master
 * descriptor and is posting it (HSPOST) to the responsible HSDirs. The descriptor ("first"/"second", the
 * two time periods) or undefined for any other line.
 */
export function uploadedDescriptor(message: string): { descriptor: 'first' | 'second'; onion: string } | undefined {
  const m = /^Uploading (first|second) descriptor for (\S+) to /.exec(message);
  return m ? { descriptor: m[1] as 'first' | 'second', onion: m[2]! } : undefined;
}

/** `We got 4 intros from 2 instances. …`: how many backends the descriptor being built comes from. */
export function introsFrom(message: string): { intros: number; instances: number } | undefined {
  const m = /^We got (\d+) intros from (\d+) instances\b/.exec(message);
  return m ? { intros: Number(m[1]), instances: Number(m[2]) } : undefined;
}

// Warnings onionbalance prints on every healthy start: not worth a warn line each restart.
const ROUTINE_WARNINGS = [
  /^Initializing onionbalance\b/,
  /^Loaded instance /,
  /^Onionbalance initialized\b/,
  /^=+$/,
  /^Onionbalance configured on a testnet/,
  /^Loaded onion /,
  // A bridge's own key (tor's format) as the master: expected, see master-key.ts.
  /^Service private key not in OBv3 format .*Trying tor's format/,
];

/**
 * Sorts onionbalance's lines into the bridge's log: errors and real warnings at warn, the rest at debug. A
 * line without the prefix (a traceback's body) goes where the line before it went; "Traceback" starts a
 * warn block by itself, since uncaught exceptions print without the prefix.
 */
export class ObLogClassifier {
  private last: 'debug' | 'warn' = 'debug';

  level(line: ObLine): 'debug' | 'warn' {
    if (line.level === undefined) {
      if (/^Traceback \(most recent call last\)/.test(line.message)) this.last = 'warn';
      return this.last;
    }
    const warn =
      line.level === 'error' || line.level === 'critical' || (line.level === 'warning' && !ROUTINE_WARNINGS.some((r) => r.test(line.message)));
    this.last = warn ? 'warn' : 'debug';
    return this.last;
  }
}
