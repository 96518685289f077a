import { captureLog, onion } from './test-support/fixtures.js';
import { createFillProgress, formatFillSummary, type FillProgress, type FillSummary } from './report.js';

const A = onion('a');
const B = onion('b');

function fakeStream(columns = 200) {
  const writes: string[] = [];
  return { writes, stream: { isTTY: true, columns, write: (t: string) => writes.push(t) > 0 } };
}

const at = (phase: FillProgress['phase'], elapsedMs: number, over: Partial<FillProgress> = {}): FillProgress => ({
  phase,
  peer: A,
  peersDone: 0,
  peers: 2,
  dags: 0,
  bytes: 0,
  blocks: 0,
  elapsedMs,
  ...over,
});

describe('createFillProgress', () => {
  it('draws one live line on a terminal, at most ten times a second, and ends it when done', () => {
    const { writes, stream } = fakeStream();
    const show = createFillProgress({ stream: stream as never, tty: true, width: 10 });
    show(at('top', 0));
    show(at('fetch', 1000, { bytes: 1024, blocks: 3 }));
    show(at('fetch', 1050, { bytes: 2048, blocks: 4 })); // too soon: not drawn
    show(at('peer-done', 2000, { peersDone: 1, dags: 1, bytes: 4096, blocks: 5 }));
    show(at('done', 2000, { peer: undefined, peersDone: 2, dags: 1, bytes: 4096, blocks: 5 }));
    expect(writes).toEqual([
      `\rfill [----------] 0/2 peers, 0 DAGs, 0 B in 0 blocks, 0 B/s asking aaaaaaaa….onion\x1b[K`,
      `\rfill [----------] 0/2 peers, 0 DAGs, 1.0 KiB in 3 blocks, 1.0 KiB/s from aaaaaaaa….onion\x1b[K`,
      `\rfill [#####-----] 1/2 peers, 1 DAG, 4.0 KiB in 5 blocks, 2.0 KiB/s from aaaaaaaa….onion\x1b[K`,
      `\rfill [##########] 2/2 peers, 1 DAG, 4.0 KiB in 5 blocks, 2.0 KiB/s\x1b[K\n`,
    ]);
  });

  it('never wraps the live line', () => {
    const { writes, stream } = fakeStream(40);
    createFillProgress({ stream: stream as never, tty: true })(at('top', 0));
    expect(writes[0]).toBe(`\r${'fill [--------------------] 0/2 peers, 0 DAGs'.slice(0, 39)}\x1b[K`);
  });

  it('logs a line per finished peer and one per interval while fetching, without a terminal', () => {
    const { log, lines } = captureLog();
    const show = createFillProgress({ log, tty: false, intervalMs: 5000 });
    show(at('top', 0));
    show(at('fetch', 100, { bytes: 10 }));
    show(at('fetch', 3000, { bytes: 20 }));
    show(at('fetch', 5200, { bytes: 30 }));
    show(at('peer-done', 5300, { peersDone: 1, dags: 1, bytes: 30, blocks: 2 }));
    show(at('done', 5300, { peer: undefined, peersDone: 2 }));
    expect(lines).toEqual([
      `fill: 0/2 peers, 0 DAGs, 10 B in 0 blocks, 100 B/s; fetching from ${A}`,
      `fill: 0/2 peers, 0 DAGs, 30 B in 0 blocks, 6 B/s; fetching from ${A}`,
      `fill: 1/2 peers, 1 DAG, 30 B in 2 blocks, 6 B/s; done with ${A}`,
    ]);
    // Written to the stream when there is no logger.
    const writes: string[] = [];
    createFillProgress({ stream: { write: (t: string) => writes.push(t) > 0 } as never, tty: false })(at('peer-done', 1000));
    expect(writes).toEqual([`fill: 0/2 peers, 0 DAGs, 0 B in 0 blocks, 0 B/s; done with ${A}\n`]);
  });
});

describe('formatFillSummary', () => {
  it('totals the run and gives each peer its line, with reasons and notes', () => {
    const summary: FillSummary = {
      peers: [
        { peer: A, status: 'ok', dags: 2, bytes: 3 * 1024 * 1024, blocks: 14, received: 3 * 1024 * 1024 + 500, evicted: 1, ms: 2000, bytesPerSec: 0, notes: ['bafyx: no room: it needs 9 MiB'] },
        { peer: B, status: 'skipped', kind: 'stalled', reason: 'no progress for 60000 ms while fetching bafyz', dags: 0, bytes: 0, blocks: 0, received: 100, evicted: 0, ms: 60_000, bytesPerSec: 0, notes: [] },
      ],
      dags: 2,
      bytes: 3 * 1024 * 1024,
      blocks: 14,
      received: 3 * 1024 * 1024 + 600,
      evicted: 1,
      ms: 62_000,
      bytesPerSec: 0,
    };
    expect(formatFillSummary(summary).split('\n')).toEqual([
      'fill: 1 of 2 peers ok; 2 DAGs filled, 3.0 MiB in 14 blocks, 1 evicted, 62.0 s, 49.6 KiB/s',
      `  ok       ${A}: 2 DAGs, 3.0 MiB in 14 blocks, 1 evicted, 2.0 s, 1.5 MiB/s`,
      '           - bafyx: no room: it needs 9 MiB',
      `  skipped  ${B} (stalled): no progress for 60000 ms while fetching bafyz; before that: 0 DAGs, 0 B in 0 blocks, 0 evicted, 60.0 s, 2 B/s`,
    ]);
  });
});
