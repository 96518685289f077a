// A logger whose lines the test can read: JSON lines into memory.
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../log/logger.js';

export interface LogEntry {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface CapturedLog {
  log: Logger;
  entries: LogEntry[];
  /** The messages so far, of one level or all; after letting winston's streams deliver. */
  messages(level?: string): Promise<string[]>;
}

export function captureLog(level = 'debug'): CapturedLog {
  const entries: LogEntry[] = [];
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) entries.push(JSON.parse(line) as LogEntry);
    }
  });
  const log = createLogger({ level, json: true, stream });
  return {
    log,
    entries,
    async messages(lvl) {
      // winston hands lines on through streams, a tick or two later.
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      return entries.filter((e) => lvl === undefined || e.level === lvl).map((e) => e.message);
    },
  };
}
