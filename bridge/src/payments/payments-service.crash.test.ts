// kill -9 of the whole payments service while it credits: M visitors have paid on the ledger (as wallets
// do, through the memo only); a bridge process crediting them from its payment stream is SIGKILLed twice
// mid-way and started again. In the end every payment is credited exactly once: no credit lost (every one
// the dead processes announced is there), none given twice (the replayed stream hits the unique key).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Keypair } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { HorizonClient } from './horizon.js';
import { PaymentsService } from './payments-service.js';
import { PaymentStore } from './store.js';
import { capturingLogger, paymentTransaction, testConfig, waitFor } from './test-support/fixtures.js';
import type { PaymentRequest } from './types.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(HERE, 'test-support', 'service-child.ts');
const HOOK = join(HERE, '..', '..', 'test', 'support', 'ts-resolve.mjs');
const M = 120;

let ledger: LedgerHandle;
let dir: string;
const bridge = Keypair.random();
const logs = capturingLogger();

beforeAll(async () => {
  ledger = await startLedger();
  dir = mkdtempSync(join(tmpdir(), 'payments-svc-crash-'));
  await ledger.friendbot(bridge.publicKey());
});
afterAll(async () => {
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcess;
  credited: string[];
  exited: Promise<string | number>;
}

function startChild(killAfter?: number): Child {
  const proc = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', HOOK, CHILD, ledger.url, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TEST_BRIDGE_SEED: bridge.secret() },
  });
  const child: Child = { proc, credited: [], exited: new Promise((r) => proc.once('exit', (code, sig) => r(sig ?? code ?? -1))) };
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.once('exit', () => expect(stderr).not.toContain(bridge.secret()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const [what, op] = line.split(' ');
    if (what !== 'credited') return;
    child.credited.push(op!);
    if (killAfter !== undefined && child.credited.length >= killAfter) proc.kill('SIGKILL');
  });
  return child;
}

function totals() {
  const store = PaymentStore.open(dir);
  try {
    const e = store.earnings();
    return { receipts: e.receipts, earned: e.creditedStroops };
  } finally {
    store.close();
  }
}

it('credits every payment exactly once across SIGKILLs of the bridge', async () => {
  // The bridge hands out M payment requests (one per visitor), then is stopped.
  const setup = new PaymentsService({
    config: testConfig(bridge.secret(), { horizonUrl: ledger.url }), dataDir: dir, log: logs.log,
    limits: { global: { capacity: M, perMinute: M } },
  });
  await setup.start();
  const requests: PaymentRequest[] = [];
  for (let i = 0; i < M; i++) requests.push((await setup.requestPayment(`circuit:${i}`, 'tor')).request);
  await setup.stop();

  // Visitors pay from their wallets while no bridge runs.
  const horizon = new HorizonClient(ledger.url);
  const payer = Keypair.random();
  await ledger.friendbot(payer.publicKey());
  let seq = (await horizon.account(payer.publicKey()))!.sequence;
  for (const r of requests) {
    await horizon.submit(paymentTransaction({ source: payer, sequence: seq++, destination: bridge.publicKey(), amount: r.amount, memoHex: r.memoHash, passphrase: ledger.networkPassphrase }));
  }

  const announced = new Set<string>();
  for (const killAfter of [25, 30]) {
    const child = startChild(killAfter);
    expect(await child.exited).toBe('SIGKILL');
    child.credited.forEach((op) => announced.add(op));
    const t = totals();
    expect(t.receipts).toBeGreaterThanOrEqual(announced.size);
    expect(t.receipts).toBeLessThan(M);
    expect(t.earned).toBe(BigInt(t.receipts) * requests[0]!.amount);
  }
  const last = startChild();
  await waitFor(() => totals().receipts === M, 30_000, 'all payments credited');
  await new Promise((r) => setTimeout(r, 300)); // anything further would be a double credit
  last.proc.kill('SIGTERM');
  await last.exited;

  const store = PaymentStore.open(dir);
  try {
    expect(store.earnings()).toMatchObject({ receipts: M, creditedStroops: BigInt(M) * requests[0]!.amount });
    const ops = new Set<string>();
    for (const r of requests) {
      const receipts = store.receiptsOf(r.sessionId);
      expect(receipts).toHaveLength(1); // each visitor credited once
      expect(store.session(r.sessionId)!.creditBytes).toBe(r.creditBytes);
      expect(store.request(r.id)!.status).toBe('paid');
      ops.add(receipts[0]!.operationId);
    }
    for (const op of announced) expect(ops.has(op)).toBe(true); // nothing announced was lost
    // The restarted processes announced only what the dead ones had not committed.
    expect(announced.size + last.credited.length).toBeLessThanOrEqual(M);
  } finally {
    store.close();
  }
}, 90_000);
