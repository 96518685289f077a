import { PassThrough } from 'node:stream';
import { createLogger } from '../log/logger.js';
import { createBootstrapProgress } from './bootstrap-progress.js';

function capture(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 80 });
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const feed = (cb: (p: { progress: number; summary: string }) => void, steps: number[]) =>
  steps.forEach((p) => cb({ progress: p, summary: `step ${p}` }));

describe('createBootstrapProgress', () => {
  it('draws one redrawn line on a terminal and ends it at 100 %', () => {
    const c = capture(true);
    feed(createBootstrapProgress({ stream: c.stream, width: 10 }), [0, 45, 100]);
    const out = c.text();
    expect(out.split('\n')).toHaveLength(2); // a single line, then the final newline
    expect(out).toContain('\rTor bootstrap [----------]   0% step 0\x1b[K');
    expect(out).toContain('\rTor bootstrap [#####-----]  45% step 45\x1b[K'); // 4.5 rounds to 5
    expect(out.endsWith('\rTor bootstrap [##########] 100% step 100\x1b[K\n')).toBe(true);
  });

  it('never writes a line wider than the terminal', () => {
    const c = capture(true);
    c.stream.columns = 40;
    createBootstrapProgress({ stream: c.stream })({ progress: 50, summary: 'x'.repeat(100) });
    expect(c.text().replace('\r', '').replace('\x1b[K', '').length).toBe(39);
  });

  it('writes plain lines at 10 % steps when not a terminal, again after a restart', () => {
    const c = capture(false);
    feed(createBootstrapProgress({ stream: c.stream }), [0, 5, 10, 14, 15, 50, 75, 90, 100, 0, 100]);
    expect(c.text().trim().split('\n')).toEqual([
      'tor bootstrap 0%: step 0',
      'tor bootstrap 10%: step 10',
      'tor bootstrap 50%: step 50',
      'tor bootstrap 75%: step 75',
      'tor bootstrap 90%: step 90',
      'tor bootstrap 100%: step 100',
      'tor bootstrap 0%: step 0',
      'tor bootstrap 100%: step 100',
    ]);
  });

  it('sends the step lines to the logger when given one', () => {
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (d: Buffer) => lines.push(d.toString()));
    const log = createLogger({ level: 'info', json: true, stream: out });
    const c = capture(false);
    feed(createBootstrapProgress({ stream: c.stream, log }), [0, 100]);
    expect(c.text()).toBe('');
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(lines.map((l) => JSON.parse(l).message)).toEqual(['tor bootstrap 0%: step 0', 'tor bootstrap 100%: step 100']);
        resolve();
      }),
    );
  });
});
