// What fill tells people: a live one-line bar on a terminal, periodic lines elsewhere (docker logs, systemd),
// like tor's bootstrap progress; and a summary at the end, one line per peer.
import type { Logger } from '../../log/logger.js';
import type { PeerFaultKind } from './errors.js';
import { formatBytes, formatRate, shortPeer } from './format.js';

/** Totals for this run so far. */
export interface FillProgress {
  phase: 'top' | 'fetch' | 'peer-done' | 'done';
  /** The peer being worked on (undefined once done). */
  peer: string | undefined;
  peersDone: number;
  peers: number;
  /** DAGs filled. */
  dags: number;
  /** CAR bytes received from peers. */
  bytes: number;
  /** Verified blocks received. */
  blocks: number;
  elapsedMs: number;
}

/** What a fill did, for one peer or for all. */
export interface FillTotals {
  /** DAGs filled, their block bytes and blocks. */
  dags: number;
  bytes: number;
  blocks: number;
  /** CAR bytes received, counting DAGs that were then refused. */
  received: number;
  /** Filled DAGs evicted to make room. */
  evicted: number;
  ms: number;
  bytesPerSec: number;
}

export interface PeerSummary extends FillTotals {
  peer: string;
  status: 'ok' | 'skipped';
  /** Why it was skipped (status 'skipped'). */
  kind?: PeerFaultKind;
  reason?: string;
  /** DAGs of this peer not filled, each with the reason. */
  notes: string[];
}

export interface FillSummary extends FillTotals {
  peers: PeerSummary[];
}

export interface FillProgressOptions {
  /** Where the bar is drawn; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Where lines go when the stream is not a terminal; without it they are written to the stream. */
  log?: Pick<Logger, 'info'>;
  /** Overrides the stream's isTTY (tests). */
  tty?: boolean;
  /** Bar width in characters; default 20. */
  width?: number;
  /** Without a terminal, at most one line per this many ms while fetching; default 5000. */
  intervalMs?: number;
}

/** Returns a callback suitable for the Filler's `progress` option. */
export function createFillProgress(opts: FillProgressOptions = {}): (p: FillProgress) => void {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? !!stream.isTTY;
  const width = opts.width ?? 20;
  const intervalMs = opts.intervalMs ?? 5000;
  let lastLine = -Infinity;
  let lastDraw = -Infinity;

  const totals = (p: FillProgress): string =>
    `${p.dags} DAG${p.dags === 1 ? '' : 's'}, ${formatBytes(p.bytes)} in ${p.blocks} block${p.blocks === 1 ? '' : 's'}, ${formatRate(p.bytes, p.elapsedMs)}`;

  return (p) => {
    if (tty) {
      // A redraw per CAR chunk would flood the terminal: ten a second is smooth enough.
      if (p.phase === 'fetch' && p.elapsedMs - lastDraw < 100) return;
      lastDraw = p.elapsedMs;
      const done = Math.round((p.peersDone / Math.max(p.peers, 1)) * width);
      const at = p.peer ? ` ${p.phase === 'top' ? 'asking' : 'from'} ${shortPeer(p.peer)}` : '';
      let line = `fill [${'#'.repeat(done)}${'-'.repeat(width - done)}] ${p.peersDone}/${p.peers} peers, ${totals(p)}${at}`;
      // Never wrap: a wrapped line cannot be redrawn with \r.
      const cols = stream.columns ?? 80;
      if (line.length > cols - 1) line = line.slice(0, cols - 1);
      // \r returns to the line start, ESC[K clears what a longer previous line left behind.
      stream.write(`\r${line}\x1b[K${p.phase === 'done' ? '\n' : ''}`);
      return;
    }
    // Without a terminal: a line per finished peer, and while fetching at most one per interval.
    if (p.phase === 'done' || p.phase === 'top') return;
    if (p.phase === 'fetch' && p.elapsedMs - lastLine < intervalMs) return;
    lastLine = p.elapsedMs;
    const what = p.phase === 'peer-done' ? `done with ${p.peer}` : `fetching from ${p.peer}`;
    const text = `fill: ${p.peersDone}/${p.peers} peers, ${totals(p)}; ${what}`;
    if (opts.log) opts.log.info(text);
    else stream.write(text + '\n');
  };
}

/** The end-of-run report: a totals line, then one line per peer with its reasons. */
export function formatFillSummary(s: FillSummary): string {
  const ok = s.peers.filter((p) => p.status === 'ok').length;
  const lines = [
    `fill: ${ok} of ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'} ok; ${s.dags} DAG${s.dags === 1 ? '' : 's'} filled, ` +
      `${formatBytes(s.bytes)} in ${s.blocks} block${s.blocks === 1 ? '' : 's'}, ${s.evicted} evicted, ` +
      `${(s.ms / 1000).toFixed(1)} s, ${formatRate(s.received, s.ms)}`,
  ];
  for (const p of s.peers) {
    const stats =
      `${p.dags} DAG${p.dags === 1 ? '' : 's'}, ${formatBytes(p.bytes)} in ${p.blocks} block${p.blocks === 1 ? '' : 's'}, ` +
      `${p.evicted} evicted, ${(p.ms / 1000).toFixed(1)} s, ${formatRate(p.received, p.ms)}`;
    lines.push(p.status === 'ok' ? `  ok       ${p.peer}: ${stats}` : `  skipped  ${p.peer} (${p.kind}): ${p.reason}; before that: ${stats}`);
    for (const n of p.notes) lines.push(`           - ${n}`);
  }
  return lines.join('\n');
}
