// Shows tor's bootstrap progress: a live single-line bar on a terminal, and on anything else
// (docker logs, systemd, files) one log line per 10 % step so logs stay short.
import type { Logger } from '../log/logger.js';
import type { BootstrapProgress } from './tor-service.js';

export interface BootstrapProgressOptions {
  /** Where the bar is drawn; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Where step lines go when the stream is not a terminal; without it they are written to the stream. */
  log?: Logger;
  /** Overrides the stream's isTTY (tests). */
  tty?: boolean;
  /** Bar width in characters; default 30. */
  width?: number;
}

/** Returns a callback suitable for TorServiceOptions.progress. */
export function createBootstrapProgress(opts: BootstrapProgressOptions = {}): (p: BootstrapProgress) => void {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? !!stream.isTTY;
  const width = opts.width ?? 30;
  let lastStep = -1;

  return ({ progress, summary }) => {
    const pct = Math.max(0, Math.min(100, Math.round(progress)));
    if (tty) {
      const filled = Math.round((pct / 100) * width);
      let line = `Tor bootstrap [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${summary}`;
      // Never wrap: a wrapped line cannot be redrawn with \r.
      const cols = stream.columns ?? 80;
      if (line.length > cols - 1) line = line.slice(0, cols - 1);
      // \r returns to the line start, ESC[K clears what a longer previous line left behind.
      stream.write(`\r${line}\x1b[K`);
      if (pct >= 100) stream.write('\n');
      return;
    }
    const step = Math.floor(pct / 10);
    // A restarted tor starts again from 0: report its steps again.
    if (step < lastStep) lastStep = -1;
    if (step <= lastStep) return;
    lastStep = step;
    const text = `tor bootstrap ${pct}%: ${summary}`;
    if (opts.log) opts.log.info(text);
    else stream.write(text + '\n');
  };
}
