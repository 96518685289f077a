// The `torplus` CLI: argument parsing (zod; one line and exit 2 on bad input), secret hygiene (the seed never
// in stdout/stderr, on success, on errors, in --verbose output), and the real program as a child process
// (Node's type stripping) against the mock bridge through a SOCKS5 stand-in: exit codes 0, 2, 3 and 4.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Keypair } from '@stellar/stellar-sdk';
import { SocksStandIn } from '../../test/support/socks-stand-in.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { PaymentsService } from '../payments/payments-service.js';
import { capturingLogger, testConfig } from '../payments/test-support/fixtures.js';
import { main, parseCommand, redactor, summaryLine, type Io } from './cli.js';
import { BudgetExhaustedError, ClientError, UsageError } from './errors.js';
import type { FetchOptions, FetchResult } from './fetcher.js';
import { MockBridge } from './test-support/mock-bridge.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, 'cli.ts');
const HOOK = join(HERE, '..', '..', 'test', 'support', 'ts-resolve.mjs');
const ONION = `${'c'.repeat(56)}.onion`;
const URL_OK = `http://${ONION}/file`;

const payer = Keypair.random();
const SEED = payer.secret();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'torplus-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const base = (over: string[] = []): string[] => [
  'fetch', URL_OK, '-o', join(dir ?? tmpdir(), 'out.bin'), '--socks', '127.0.0.1:9050', '--max-spend', '0.5',
  '--horizon', 'http://127.0.0.1:8000', ...over,
];

function usageError(argv: string[], env: Record<string, string> = { TORPLUS_SEED: SEED }): string {
  try {
    parseCommand(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('expected a UsageError');
}

/** Runs main() in-process with captured output. */
async function run(argv: string[], env: Record<string, string | undefined>, fetch?: Io['fetch']): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env, ...(fetch ? { fetch } : {}) });
  return { code, out, err };
}

const result = (over: Partial<FetchResult> = {}): FetchResult => ({
  bytes: 3145728, paidStroops: 300_000n, spentStroops: 300_000n, seconds: 4.2, throttled: false, output: '/x', url: URL_OK,
  sessionToken: 'tok', sessionId: 'ses_abc',
  payments: [1n, 2n, 3n].map((n) => ({ mode: 'tab' as const, requestId: 'req', amountStroops: 100_000n, tabId: 'tab_1', cumulativeStroops: n * 100_000n, receipt: {} })),
  ...over,
});

describe('parseCommand', () => {
  it('help', () => {
    for (const argv of [[], ['--help'], ['-h'], ['help'], ['fetch', '--help']]) expect(parseCommand(argv, {})).toEqual({ kind: 'help' });
  });

  it('parses a full command line, the seed from TORPLUS_SEED', () => {
    const c = parseCommand(base(['--mode', 'chain', '--allow-throttled', '--timeout', '90', '-q', '--session-file', 's.tok']), { TORPLUS_SEED: SEED });
    expect(c.kind).toBe('fetch');
    if (c.kind !== 'fetch') return;
    expect(c.args).toMatchObject({
      url: URL_OK, output: join(dir, 'out.bin'), socks: { host: '127.0.0.1', port: 9050 }, maxSpendStroops: 5_000_000n,
      horizon: 'http://127.0.0.1:8000', mode: 'chain', allowThrottled: true, timeoutMs: 90_000, retries: 6, quiet: true, verbose: false,
      sessionFile: 's.tok', seedSource: 'TORPLUS_SEED',
    });
    expect(c.args.seed?.reveal()).toBe(SEED);
    expect(String(c.args.seed)).toBe('[redacted]');
    expect(JSON.stringify(c.args.seed)).toBe('"[redacted]"');
  });

  it('defaults, a bare SOCKS port, IPv6, the seed from a file or a flag', () => {
    const seedFile = join(dir, 'seed');
    writeFileSync(seedFile, `${SEED}\n`);
    const c = parseCommand(['fetch', URL_OK, '-o', join(dir, 'a'), '--socks', '9150', '--max-spend', '0', '--seed-file', seedFile], {});
    expect(c.kind === 'fetch' && c.args).toMatchObject({ socks: { host: '127.0.0.1', port: 9150 }, maxSpendStroops: 0n, mode: 'tab', timeoutMs: 60_000, seedSource: '--seed-file' });
    const d = parseCommand(['fetch', URL_OK, '-o', join(dir, 'a'), '--socks', '[::1]:9050', '--max-spend', '0'], {});
    expect(d.kind === 'fetch' && d.args).toMatchObject({ socks: { host: '::1', port: 9050 }, seed: undefined });
    const e = parseCommand(base(['--seed', SEED]), {});
    expect(e.kind === 'fetch' && e.args.seedSource).toBe('--seed');
  });

  it.each([
    [['fetch', 'https://x.onion/', '-o', 'f', '--socks', '1', '--max-spend', '0'], /^the URL: expected an http:\/\/ URL/],
    [['fetch', 'not a url', '-o', 'f', '--socks', '1', '--max-spend', '0'], /^the URL:/],
    [['fetch', URL_OK, '--socks', '1', '--max-spend', '0'], /^-o\/--output: expected a file name/],
    [['fetch', URL_OK, '-o', 'f', '--max-spend', '0'], /^--socks: /],
    [base(['--socks', 'localhost']), /^--socks: expected HOST:PORT/],
    [base(['--socks', '127.0.0.1:70000']), /^--socks: expected HOST:PORT/],
    [['fetch', URL_OK, '-o', 'f', '--socks', '1'], /^--max-spend: expected the most to spend/],
    [base(['--max-spend', '0.12345678']), /^--max-spend: expected an amount of XLM/],
    [base(['--max-spend=-1']), /^--max-spend: expected an amount of XLM/],
    [base(['--max-spend', '-1']), /^--max-spend needs a value$/],
    [base(['--max-spend', 'lots']), /^--max-spend: expected an amount of XLM/],
    [base(['--mode', 'cash']), /^--mode: expected tab or chain/],
    [base(['--timeout', '0']), /^--timeout: expected 1 to 3600 seconds/],
    [base(['--timeout', 'soon']), /^--timeout: expected a whole number/],
    [base(['--horizon', 'ftp://h']), /^--horizon: expected an http:\/\/ or https:\/\/ URL/],
    [base(['--frobnicate']), /^unknown option --frobnicate$/],
    [base(['--socks']), /^--socks needs a value$/],
    [['get', URL_OK], /^unknown command/],
    [['fetch', URL_OK, URL_OK, '-o', 'f', '--socks', '1', '--max-spend', '0'], /^fetch takes exactly one URL \(got 2 arguments\)$/],
    [base(['-q', '-v']), /exclude each other/],
    [['fetch', URL_OK, '-o', '/nonexistent-dir/x', '--socks', '1', '--max-spend', '0'], /^-o\/--output: the directory \/nonexistent-dir does not exist$/],
  ])('refuses %j', (argv, message) => {
    const m = usageError(argv);
    expect(m).toMatch(message);
    expect(m).not.toContain('\n');
  });

  it('needs a seed and a Horizon to pay; one seed source; a valid seed', () => {
    expect(usageError(base(), {})).toMatch(/no seed is given \(set TORPLUS_SEED\)/);
    expect(usageError(['fetch', URL_OK, '-o', 'f', '--socks', '1', '--max-spend', '1'])).toMatch(/^--horizon: required/);
    expect(usageError(base(['--seed', SEED, '--seed-file', 'x']))).toMatch(/one way only/);
    expect(usageError(base(), { TORPLUS_SEED: 'SNOTASEED' })).toBe('the seed (TORPLUS_SEED): expected a Stellar secret seed (S…, 56 characters)');
    expect(usageError(base(['--seed-file', join(dir, 'missing')]), {})).toBe('--seed-file: cannot read it (ENOENT)');
    // A public key is not a seed.
    expect(usageError(base(), { TORPLUS_SEED: payer.publicKey() })).toMatch(/expected a Stellar secret seed/);
  });
});

describe('secret hygiene (in-process)', () => {
  const fetchFails = (e: Error) => async (): Promise<FetchResult> => {
    throw e;
  };

  it.each([
    ['a bad --max-spend', base(['--max-spend', SEED])],
    ['the seed as a second URL', ['fetch', URL_OK, SEED, '-o', 'f', '--socks', '1', '--max-spend', '0']],
    ['the seed as --mode', base(['--mode', SEED])],
    ['the seed as --socks', base(['--socks', SEED])],
    ['the seed as the command', [SEED]],
    ['the seed as an option name', [`--${SEED}`]],
    ['the seed glued to an unknown option', [`--seedx=${SEED}`]],
    ['a truncated seed', base(['--seed', SEED.slice(0, 40)])],
    ['the seed as the URL', ['fetch', SEED, '-o', 'f', '--socks', '1', '--max-spend', '0']],
  ])('%s: exit 2, one line, no seed', async (_what, argv) => {
    const r = await run(argv, { TORPLUS_SEED: SEED });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(2); // the message and "Try torplus --help."
    expect(r.err).not.toContain(SEED);
    expect(r.err).not.toContain(SEED.slice(0, 40));
    expect(r.err).not.toMatch(/S[A-Z2-7]{55}/);
  });

  it('a wrong seed in TORPLUS_SEED is not echoed', async () => {
    const wrong = `S${'A'.repeat(55)}`; // the right shape, a bad checksum
    const r = await run(base(), { TORPLUS_SEED: wrong });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the seed \(TORPLUS_SEED\): expected a Stellar secret seed/);
    expect(r.err).not.toContain(wrong);
  });

  it('errors and --verbose events that would contain the seed are redacted', async () => {
    const seen: FetchOptions[] = [];
    const r = await run(base(['--verbose']), { TORPLUS_SEED: SEED }, async (o) => {
      seen.push(o);
      o.onEvent?.(`something mentions ${SEED} and ${SEED.toLowerCase()}`);
      throw new ClientError(`a library said ${SEED}`);
    });
    expect(r.code).toBe(1);
    expect(r.err).toContain('a library said [redacted]');
    expect(r.err).toContain('something mentions [redacted]');
    expect(r.err).not.toContain(SEED);
    // The seed reaches the fetch as a Secret, not as a string.
    expect(String(seen[0]!.seed)).toBe('[redacted]');
  });

  it('--seed on the command line: a warning, and the seed redacted from everything', async () => {
    const r = await run(base(['--seed', SEED, '-q']), {}, fetchFails(new Error(`boom ${SEED}`)));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/warning: --seed is visible to other users/);
    expect(r.err).not.toContain(SEED);
  });

  it('exit codes: 3 budget (partial kept), 4 HTTP, 0 with one summary line', async () => {
    const budget = new BudgetExhaustedError(1_000_000n, 0n, 5_000_000n);
    budget.partialPath = '/tmp/out.bin.part';
    budget.partialBytes = 1234;
    const b = await run(base(['-q']), { TORPLUS_SEED: SEED }, fetchFails(budget));
    expect(b.code).toBe(3);
    expect(b.err).toBe(
      'torplus: payment required: the bridge asks 0.1000000 XLM, but only 0.0000000 XLM of --max-spend 0.5000000 XLM is left; ' +
        '1234 bytes kept in /tmp/out.bin.part (raise --max-spend, or use --allow-throttled to finish unpaid)\n',
    );
    const h = await run(base(['-q']), { TORPLUS_SEED: SEED }, fetchFails(new (await import('./errors.js')).HttpStatusError(404, URL_OK)));
    expect(h.code).toBe(4);
    expect(h.err).toBe(`torplus: ${URL_OK}: HTTP 404\n`);
    const ok = await run(base(['-q']), { TORPLUS_SEED: SEED }, async () => result());
    expect(ok.code).toBe(0);
    expect(ok.out).toBe('fetched 3145728 bytes in 4.2 s; paid 0.0300000 XLM in 3 tab payments (session ses_abc)\n');
    expect(ok.err).toBe('');
  });

  it('summary lines', () => {
    expect(summaryLine(result({ payments: [], paidStroops: 0n, spentStroops: 0n, sessionId: undefined }))).toBe('fetched 3145728 bytes in 4.2 s; paid nothing');
    const chain = result({
      paidStroops: 10_000n, spentStroops: 20_000n, throttled: true,
      payments: [{ mode: 'chain', requestId: 'r', amountStroops: 10_000n, transactionHash: 'ab', receipt: {} }],
    });
    expect(summaryLine(chain)).toBe(
      'fetched 3145728 bytes in 4.2 s; paid 0.0010000 XLM in 1 on-chain payment (session ses_abc); 0.0020000 XLM signed in all; partly unpaid (throttled)',
    );
    expect(redactor(['secret-value'])('a secret-value b')).toBe('a [redacted] b');
  });
});

// --- the program itself ------------------------------------------------------------------------------

interface Child {
  code: number | null;
  out: string;
  err: string;
}

function cli(args: string[], env: Record<string, string>): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', HOOK, CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('torplus as a process', () => {
  let ledger: LedgerHandle;
  let payments: PaymentsService;
  let mock: MockBridge;
  let socks: SocksStandIn;
  let socksPort: number;
  let work: string;
  const bridge = Keypair.random();
  const logs = capturingLogger();
  const content = randomBytes(2 * 1024 * 1024);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'torplus-cli-e2e-'));
    ledger = await startLedger();
    await ledger.friendbot(bridge.publicKey());
    await ledger.friendbot(payer.publicKey());
    payments = new PaymentsService({
      config: testConfig(bridge.secret(), { horizonUrl: ledger.url, pricePerMibStroops: 10_000n, paymentMib: 1, tabSettleSeconds: 3600 }),
      dataDir: work,
      log: logs.log,
      limits: { perVisitor: { capacity: 100, perMinute: 100 }, tabsPerSession: { capacity: 20, perMinute: 20 } },
      tabs: { tickMs: 3_600_000, abandonAfterMs: 3_600_000 },
    });
    await payments.start();
    // 402 at once (no free bytes), and cut when unpaid: no crawl detection needed, so the CLI's defaults work.
    mock = new MockBridge({ payments, content, apiOrigin: `http://${ONION}:8000`, freeBytes: 0, throttleBytesPerSec: 64 * 1024, cutWhenUnpaid: true });
    const port = await mock.listen();
    socks = new SocksStandIn(() => port);
    socksPort = await socks.listen();
  });
  afterAll(async () => {
    await socks.close();
    await mock.close();
    await payments.stop();
    await ledger.close();
    rmSync(work, { recursive: true, force: true });
  });

  const args = (out: string, over: string[] = []) => [
    'fetch', URL_OK, '-o', join(work, out), '--socks', `127.0.0.1:${socksPort}`, '--horizon', ledger.url, '--max-spend', '0.01', ...over,
  ];
  const clean = (c: Child) => {
    expect(c.out + c.err).not.toContain(SEED);
    expect(c.out + c.err).not.toMatch(/S[A-Z2-7]{55}/);
  };

  it('--help, and bad arguments: one line and exit 2', async () => {
    const help = await cli(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: torplus fetch URL/);
    const bad = await cli(args('x', ['--max-spend', SEED]), { TORPLUS_SEED: SEED });
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('torplus: --max-spend: expected an amount of XLM such as 0.5 (at most 7 decimals)\nTry torplus --help.\n');
    clean(bad);
  });

  it('downloads, pays two tab payments, prints one summary line; the session file is kept', async () => {
    const sessionFile = join(work, 'session');
    const c = await cli(args('a.bin', ['--verbose', '--session-file', sessionFile]), { TORPLUS_SEED: SEED });
    if (process.env.CLIENT_TEST_EVENTS === '1') process.stdout.write(c.err);
    expect(c.err).toMatch(/opened tab tab_/);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/^fetched 2097152 bytes in \d+\.\d s; paid 0\.0020000 XLM in 2 tab payments \(session ses_[A-Za-z0-9_-]+\)\n$/);
    expect(readFileSync(join(work, 'a.bin')).equals(content)).toBe(true);
    expect(statSync(sessionFile).mode & 0o777).toBe(0o600);
    expect(payments.resolveSession(readFileSync(sessionFile, 'utf8').trim())).toMatch(/^ses_/);
    clean(c);
  });

  it('exit 3 at --max-spend with the partial file kept; --seed warns', async () => {
    const c = await cli(args('b.bin', ['--max-spend', '0.001', '--seed', SEED, '-q']), {});
    expect(c.code).toBe(3);
    expect(c.out).toBe('');
    expect(c.err).toMatch(/warning: --seed is visible/);
    expect(c.err).toMatch(/payment required: the bridge asks 0\.0010000 XLM, but only 0\.0000000 XLM of --max-spend 0\.0010000 XLM is left; 1048576 bytes kept in .*b\.bin\.part/);
    expect(readFileSync(join(work, 'b.bin.part')).equals(content.subarray(0, 1048576))).toBe(true);
    clean(c);
  });

  it('exit 4 on an HTTP error from the site', async () => {
    const c = await cli([...args('c.bin', ['-q']).slice(0, 1), `http://${ONION}/missing`, ...args('c.bin', ['-q']).slice(2)], { TORPLUS_SEED: SEED });
    expect(c.code).toBe(4);
    expect(c.err).toBe(`torplus: http://${ONION}/missing: HTTP 404\n`);
    clean(c);
  });

  it('exit 1 when nothing listens on the SOCKS port', async () => {
    const c = await cli(['fetch', URL_OK, '-o', join(work, 'd.bin'), '--socks', '127.0.0.1:1', '--max-spend', '0', '-q', '--retries', '0'], {});
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/^torplus: cannot connect to c+\.onion through the SOCKS5 proxy 127\.0\.0\.1:1: .*ECONNREFUSED/);
  });
});

describe('errors', () => {
  it('carry their exit codes', () => {
    expect(new UsageError('x').exitCode).toBe(2);
    expect(new BudgetExhaustedError(1n, 0n, 0n).exitCode).toBe(3);
  });
});
