// The whole payment flow on the private Tor network with the local ledger: a visitor that does not
// pay gets the free allowance and then the throttled rate; the reference client pays and downloads
// at full speed; the bridge's balance grows; no seed appears in any output.
import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startBridgeProcess, type BridgeProcess, CLI_PATH } from '../src/devnet/bridge-process.js';
import { startLedger, type LedgerHandle } from '../src/devnet/ledger/ledger.js';
import { balanceOf, fundedAccount, horizonFor } from '../src/devnet/ledger/testing.js';
import { socksRequest } from '../src/devnet/socks-http.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';

jest.setTimeout(180_000);

const CLIENT = join(dirname(CLI_PATH), 'client', 'cli.js');
const FREE = 262_144;
const RATE = 32_768;

describe('payments over the private Tor network', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-pay-e2e-'));
  const www = join(dir, 'www');
  const file = randomBytes(3 * 1024 * 1024);
  let ledger: LedgerHandle;
  let bridge: BridgeProcess;
  let onion: string;
  let seeds: { bridge: string; visitor: string };
  let bridgeAccount: string;
  let apiPort: number;

  beforeAll(async () => {
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'big.bin'), file);
    writeFileSync(join(www, 'index.html'), '<h1>paid site</h1>');
    ledger = await startLedger({ port: 0 });
    const b = await fundedAccount(ledger);
    const v = await fundedAccount(ledger);
    seeds = { bridge: b.keypair.secret(), visitor: v.keypair.secret() };
    bridgeAccount = b.address;
    const [http, api] = await freePorts(2);
    apiPort = api!;
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: www, TOR_DIR: join(dir, 'tor'), DATA_DIR: join(dir, 'data'), TOR_EXTRA_CONFIG: net.joinConfigFile,
        LISTEN_HOST: '127.0.0.1', HTTP_PORT: String(http), API_PORT: String(api),
        seed: seeds.bridge, PP_ENV: 'local', HORIZON_URL: ledger.url,
        FREE_BYTES: String(FREE), THROTTLE_BYTES_PER_SEC: String(RATE), GRACE_SECONDS: '0', PRICE_PER_MIB: '0.01', PAYMENT_MIB: '10',
        ADMIN_TOKEN: 'e2e-admin-token-0123456789',
      },
    });
    onion = await bridge.published(90_000);
    await waitForOnion(`http://${onion}/`, net.socksPort, { timeoutMs: 60_000 });
  });

  afterAll(async () => {
    await bridge?.stop(5000);
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a visitor that does not pay the free allowance, then the throttled rate', async () => {
    const seconds = 8;
    const { res } = await socksRequest(`http://${onion}/big.bin`, { socksPort: net.socksPort, timeoutMs: 30_000 });
    expect(res.headers['torplus-payment-request']).toBeUndefined(); // the first response starts within the allowance
    let bytes = 0;
    let atStart = 0;
    await new Promise<void>((resolve) => {
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        // The throttled phase starts once the allowance is used up.
        if (atStart === 0 && bytes >= FREE + 64 * 1024) atStart = performance.now();
      });
      setTimeout(() => (res.destroy(), resolve()), seconds * 1000);
    });
    expect(bytes).toBeGreaterThan(FREE);
    expect(bytes).toBeLessThan(FREE + (seconds + 2) * RATE * 1.2 + 256 * 1024);
    const throttledSeconds = (performance.now() - atStart) / 1000;
    const rate = (bytes - FREE - 64 * 1024) / throttledSeconds;
    expect(rate).toBeGreaterThan(RATE * 0.6);
    expect(rate).toBeLessThan(RATE * 1.4);
  });

  it('lets the reference client pay and download the identical file fast', async () => {
    const before = Number(await balanceOf(horizonFor(ledger), bridgeAccount));
    const out = join(dir, 'fetched.bin');
    const started = performance.now();
    const r = await run(process.execPath, [CLIENT, 'fetch', `http://${onion}/big.bin`, '--socks', `127.0.0.1:${net.socksPort}`, '--horizon', ledger.url, '--max-spend', '1', '-o', out, '--mode', 'chain'], {
      TORPLUS_SEED: seeds.visitor,
    });
    const seconds = (performance.now() - started) / 1000;
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(file)).toBe(true);
    // Throttled, the 3 MB would take about 90 s.
    expect(seconds).toBeLessThan(45);
    expect(r.stdout).toMatch(/paid/);
    for (const s of Object.values(seeds)) {
      expect(r.stdout + r.stderr).not.toContain(s);
    }
    await new Promise((res) => setTimeout(res, 500));
    const after = Number(await balanceOf(horizonFor(ledger), bridgeAccount));
    expect(after).toBeGreaterThan(before);
  });

  it('pays in tab mode too: pre-signed cumulative payments the bridge settles', async () => {
    const out = join(dir, 'fetched-tab.bin');
    const r = await run(process.execPath, [CLIENT, 'fetch', `http://${onion}/big.bin`, '--socks', `127.0.0.1:${net.socksPort}`, '--horizon', ledger.url, '--max-spend', '1', '-o', out, '--mode', 'tab'], {
      TORPLUS_SEED: seeds.visitor,
    });
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(file)).toBe(true);
    expect(r.stdout).toMatch(/tab/);
    const earnings = await fetch(`http://127.0.0.1:${apiPort}/v1/admin/earnings`, { headers: { authorization: 'Bearer e2e-admin-token-0123456789' } });
    expect(earnings.status).toBe(200);
    expect(Number(((await earnings.json()) as { receipts: number }).receipts)).toBeGreaterThanOrEqual(2);
  });

  it('never prints a seed in the bridge output', () => {
    const text = bridge.lines.join('\n');
    for (const s of Object.values(seeds)) expect(text).not.toContain(s);
  });
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
