// kill -9 while crediting: a child process credits payments one store transaction at a time and is killed
// with SIGKILL mid-way, several times; then it runs to the end over the same payments. Every credit it
// reported before dying must be there (none lost), and in the end every payment is credited exactly once
// (none twice): receipts, session credit and earnings all add up.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PaymentStore } from './store.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(HERE, 'test-support', 'crash-child.ts');
const HOOK = join(HERE, '..', '..', 'test', 'support', 'ts-resolve.mjs');
const N = 4000;

interface Run {
  credited: number[];
  replays: number;
  done: boolean;
  signal: string | null;
}

/** Runs the child; with `killAfter`, SIGKILLs it once it has reported that many new credits. */
function runChild(dir: string, killAfter?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', HOOK, CHILD, dir, String(N)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { credited: [], replays: 0, done: false, signal: null };
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [what, i] = line.split(' ');
      if (what === 'credited') run.credited.push(Number(i));
      if (what === 'replay') run.replays++;
      if (what === 'done') run.done = true;
      if (killAfter !== undefined && run.credited.length >= killAfter && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      run.signal = signal;
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(run);
    });
  });
}

function totals(dir: string) {
  const store = PaymentStore.open(dir);
  try {
    const receipts = store.receiptsOf('ses_crash');
    return {
      ops: new Set(receipts.map((r) => r.operationId)),
      receipts: receipts.length,
      creditBytes: store.session('ses_crash')?.creditBytes ?? 0,
      earned: store.earnings().creditedStroops,
    };
  } finally {
    store.close();
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'payments-crash-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('loses no credit and gives none twice when killed with SIGKILL mid-way', async () => {
  let reported = new Set<number>();
  for (const killAfter of [300, 700, 1100]) {
    const run = await runChild(dir, killAfter);
    expect(run.signal).toBe('SIGKILL');
    expect(run.done).toBe(false);
    for (const i of run.credited) reported.add(i);
    const t = totals(dir);
    // Nothing reported as credited was lost…
    for (const i of reported) expect(t.ops.has(`op-${i}`)).toBe(true);
    // …and the three writes of every credit are all there or all absent.
    expect(t.creditBytes).toBe(t.receipts * 1024);
    expect(t.earned).toBe(BigInt(t.receipts) * 1000n);
    expect(t.receipts).toBeLessThan(N);
  }
  const before = totals(dir).receipts;
  const last = await runChild(dir);
  expect(last.done).toBe(true);
  // Everything credited before is refused as a replay; the rest is credited now.
  expect(last.replays).toBe(before);
  expect(last.credited).toHaveLength(N - before);
  reported = new Set([...reported, ...last.credited]);
  const t = totals(dir);
  expect(t.receipts).toBe(N);
  expect(t.ops.size).toBe(N);
  expect(t.creditBytes).toBe(N * 1024);
  expect(t.earned).toBe(BigInt(N) * 1000n);
}, 60_000);
