// `npm run demo`: the whole flow offline. A private Tor network on loopback, the local ledger with two
// funded accounts, the bridge on the sample www/ with the publisher's seed, a visitor fetching the site
// over the onion, an unpaid visitor throttled, and the reference client paying and speeding up.
// `--once` exits after the fetch (0 on success, 1 with the failing step); otherwise it keeps
// running until Ctrl-C. Every process it starts is stopped on the way out.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import { CLI_PATH, startBridgeProcess, type BridgeProcess } from './bridge-process.js';
import { startLedger, type LedgerHandle } from './ledger/ledger.js';
import { socksGet, socksRequest } from './socks-http.js';
import { startTorNetwork, waitForOnion, type TorNetwork } from './tornet.js';
import { freePorts } from '../util/free-port.js';
import { startDnsmasq, type Dnsmasq } from './dnsmasq.js';
import { startClientTor, type ClientTor } from './client-tor.js';
import { browserVisitorPays } from './demo-browser.js';

const once = process.argv.includes('--once');
const root = resolve(process.env.TORPLUS_DEMO_ROOT ?? '.');
const stateDir = join(root, '.cache', 'demo');

const out = (s: string) => process.stdout.write(s + '\n');
let stepNo = 0;
async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  stepNo++;
  const started = Date.now();
  out(`\n[${stepNo}] ${title}`);
  try {
    const v = await fn();
    out(`    ✓ done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return v;
  } catch (err) {
    throw new StepError(`step ${stepNo} (${title}) failed: ${(err as Error).message}`);
  }
}
class StepError extends Error {}

let net: TorNetwork | undefined;
let bridge: BridgeProcess | undefined;
let dns: Dnsmasq | undefined;
let visitorTor: ClientTor | undefined;
let ledger: LedgerHandle | undefined;
let runDir: string | undefined;
let cleaning: Promise<void> | undefined;
let onInterrupt: (() => void) | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await bridge?.stop(12_000);
    await visitorTor?.stop();
    await net?.stop();
    await dns?.stop();
    await ledger?.close();
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Shows what the bridge prints that matters to a person: the record, warnings and errors. */
function showBridgeLine(line: string): void {
  if (!line.startsWith('{')) {
    out(`    bridge │ ${line}`);
    return;
  }
  try {
    const j = JSON.parse(line) as { level?: string; message?: string; service?: string };
    if (j.level === 'error' || (j.level === 'warn' && j.service !== 'tor') || /bootstrap|published/.test(j.message ?? '')) {
      out(`    bridge │ ${j.level}: ${j.message}`);
    }
  } catch {
    out(`    bridge │ ${line}`);
  }
}

async function main(): Promise<void> {
  out('TorPlus Bridge demo: everything runs on this machine, on loopback, with no Internet access.');
  net = await step('Start a private Tor network (3 directory authorities, 2 relays, 1 client)', () =>
    startTorNetwork({ log: (l) => out(`    tor net │ ${l}`) }),
  );
  const accounts = await step('Start the local Stellar ledger (Horizon API) with two funded accounts: the publisher and a visitor', async () => {
    ledger = await startLedger({ port: 0 });
    const publisher = Keypair.random();
    const visitor = Keypair.random();
    await ledger.friendbot(publisher.publicKey());
    await ledger.friendbot(visitor.publicKey());
    out(`    ledger ${ledger.url}; publisher ${publisher.publicKey()}, visitor ${visitor.publicKey()} (10,000 XLM each)`);
    return { publisher, visitor };
  });
  const [httpPort, apiPort] = await freePorts(2);
  // A DNS server on loopback for example.test: the bridge's TXT check asks it, never the machine's resolver.
  dns = await startDnsmasq({ records: { 'torplus.example.test': [] } });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  // The sample site, plus a file big enough to go past the free allowance. Payments start afresh each
  // run (a new ledger); the onion key in .cache/demo/tor is kept, so the address stays the same.
  const run = mkdtempSync(join(tmpdir(), 'torplus-demo-'));
  runDir = run;
  const site = join(run, 'www');
  cpSync(join(root, 'www'), site, { recursive: true });
  const file = randomBytes(DEMO_FILE_BYTES);
  writeFileSync(join(site, 'demo.bin'), file);
  const onion = await step('Start the bridge on www/ with the publisher\'s seed, and wait for its onion service to be published', async () => {
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: site,
        TOR_DIR: join(stateDir, 'tor'),
        DATA_DIR: join(run, 'data'),
        TOR_EXTRA_CONFIG: net!.joinConfigFile,
        LISTEN_HOST: '127.0.0.1',
        HTTP_PORT: String(httpPort),
        API_PORT: String(apiPort),
        DOMAIN: 'example.test',
        DNS_SERVERS: dns!.server,
        DNS_RETRY_SECONDS: '1',
        seed: accounts.publisher.secret(),
        PP_ENV: 'local',
        HORIZON_URL: ledger!.url,
        ADMIN_TOKEN: adminToken,
        FREE_BYTES: String(FREE_BYTES),
        GRACE_SECONDS: '0',
        THROTTLE_BYTES_PER_SEC: String(THROTTLE),
        PRICE_PER_MIB: '0.01',
        PAYMENT_MIB: '10',
        TAB_SETTLE_SECONDS: '2',
      },
      onLine: showBridgeLine,
    });
    return bridge.published(120_000);
  });
  const page = await step(`Fetch the site over the onion through the SOCKS port 127.0.0.1:${net.socksPort}`, async () => {
    const r = await waitForOnion(`http://${onion}/`, net!.socksPort, { timeoutMs: 60_000 });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    const title = /<title>([^<]*)<\/title>/i.exec(r.body.toString('utf8'))?.[1] ?? '(no title)';
    out(`    HTTP ${r.status}, ${r.body.length} bytes, "${title}", first byte after ${r.firstByteMs.toFixed(0)} ms`);
    return r;
  });

  await step('Fetch the same page from the bridge\'s IPFS gateway over the onion, by the root it published', async () => {
    const line = bridge!.lines.find((l) => l.startsWith('ipfs=/ipfs/'));
    if (!line) throw new Error('the bridge printed no ipfs= line');
    const r = await socksGet(`http://${onion}${line.slice('ipfs='.length)}/index.html`, { socksPort: net!.socksPort, timeoutMs: 30_000 });
    if (r.status !== 200 || !r.body.equals(page.body)) throw new Error(`HTTP ${r.status}; the IPFS copy differs from the site`);
    out(`    ${line.slice('ipfs='.length)}/index.html: HTTP ${r.status}, identical, ETag ${String(r.headers.etag)}`);
  });

  await step(`Publish the TXT record on the local DNS server (${dns.server}); the bridge checks it`, async () => {
    await dns!.setRecords({ 'torplus.example.test': [`torplus=${onion}`] });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const h = await fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.json() as Promise<{ services?: { dns?: { state?: string; detail?: string } } }>);
      if (h.services?.dns?.state === 'found') return out(`    ${h.services.dns.detail}`);
      if (Date.now() > deadline) throw new Error(`the bridge did not see the record: ${h.services?.dns?.detail ?? 'no dns check'}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  const unpaid = await step(`A visitor that does not pay downloads demo.bin (${kib(DEMO_FILE_BYTES)}): ${kib(FREE_BYTES)} free, then throttled to ${kib(THROTTLE)}/s`, async () => {
    const { res } = await socksRequest(`http://${onion}/demo.bin`, { socksPort: net!.socksPort, timeoutMs: 30_000 });
    const requestUrl = res.headers['torplus-payment-request'];
    let bytes = 0;
    let throttledFrom = 0;
    let throttledBytes = 0;
    await new Promise<void>((resolve) => {
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes > FREE_BYTES + 64 * 1024) {
          if (!throttledFrom) throttledFrom = performance.now();
          else throttledBytes += c.length;
        }
      });
      setTimeout(() => (res.destroy(), resolve()), UNPAID_SECONDS * 1000);
    });
    const rate = throttledFrom ? throttledBytes / ((performance.now() - throttledFrom) / 1000) : 0;
    out(`    ${kib(bytes)} in ${UNPAID_SECONDS} s; after the free ${kib(FREE_BYTES)}: ${kib(rate)}/s (throttled${requestUrl ? '' : ''})`);
    if (bytes <= FREE_BYTES) throw new Error(`only ${bytes} bytes arrived: the free allowance did not go through`);
    if (rate > THROTTLE * 2) throw new Error(`the visitor was not throttled (${kib(rate)}/s)`);
    return { bytes, rate };
  });

  const paid = await step('The reference client (torplus fetch) downloads it too: it pays the payment request (tab) and speeds up', async () => {
    const outFile = join(run, 'demo.bin.fetched');
    const started = performance.now();
    const r = await runClient(['fetch', `http://${onion}/demo.bin`, '--socks', `127.0.0.1:${net!.socksPort}`, '--horizon', ledger!.url, '--max-spend', '1', '-o', outFile, '-q'], {
      TORPLUS_SEED: accounts.visitor.secret(),
    });
    const seconds = (performance.now() - started) / 1000;
    for (const line of (r.stdout + r.stderr).trim().split('\n')) if (line) out(`    client │ ${line}`);
    if (r.code !== 0) throw new Error(`torplus fetch exited ${r.code}`);
    if (!readFileSync(outFile).equals(file)) throw new Error('the downloaded file differs from the published one');
    const rate = DEMO_FILE_BYTES / seconds;
    out(`    ${kib(DEMO_FILE_BYTES)} in ${seconds.toFixed(1)} s: ${kib(rate)}/s, ${(rate / Math.max(1, unpaid.rate)).toFixed(0)}× the throttled rate; identical to the published file`);
    return { seconds, rate };
  });

  const browser = await step('A visitor in a browser (headless Chromium through a tor of its own) is shown the pay page, and pays its QR code from a wallet', async () => {
    // Its own tor: the reference client's circuit is paid up by now, and a browser cannot ask tor for another.
    visitorTor = await startClientTor(net!.joinConfig);
    return browserVisitorPays({
      onion, socksPort: visitorTor.socksPort, ledger: ledger!, wallet: accounts.visitor, freeBytes: FREE_BYTES,
      screenshot: join(stateDir, 'pay-page.png'), out,
    });
  });

  const earnings = await step('The publisher\'s earnings (GET /v1/admin/earnings), and the tab settled on the ledger', async () => {
    // The credit is immediate; the bridge settles tab payments on the ledger within TAB_SETTLE_SECONDS.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${apiPort}/v1/admin/earnings`, { headers: { authorization: `Bearer ${adminToken}` } });
      const e = (await r.json()) as { receipts: number; creditedStroops: string; onChainStroops: string };
      if (Number(e.onChainStroops) > 0 || Date.now() > deadline) {
        const balance = await fetch(`${ledger!.url}/accounts/${accounts.publisher.publicKey()}`)
          .then((a) => a.json() as Promise<{ balances: Array<{ asset_type: string; balance: string }> }>)
          .then((a) => a.balances.find((b) => b.asset_type === 'native')?.balance ?? '?');
        out(`    ${e.creditedStroops} XLM credited in ${e.receipts} receipt(s); ${e.onChainStroops} XLM settled on the ledger; publisher balance ${balance} XLM`);
        if (Number(e.creditedStroops) <= 0) throw new Error('nothing was credited');
        return { ...e, balance };
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  });

  out('\nSummary');
  out(`  onion address   ${onion}`);
  out(`  DNS TXT record  torplus.example.test TXT "torplus=${onion.replace(/\.onion$/, '')}"`);
  out(`  fetched         ${page.body.length} bytes of www/index.html over Tor`);
  out(`  unpaid visitor  ${kib(unpaid.bytes)} (${kib(FREE_BYTES)} free, then ${kib(unpaid.rate)}/s throttled)`);
  out(`  paying visitor  ${kib(DEMO_FILE_BYTES)} at ${kib(paid.rate)}/s`);
  out(`  browser visitor paid the pay page's QR code; the page continued ${browser.continuedAfterSeconds.toFixed(1)} s later (${browser.screenshot})`);
  out(`  earnings        ${earnings.creditedStroops} XLM (${earnings.onChainStroops} XLM settled); publisher balance ${earnings.balance} XLM`);
  out(`  dashboard       http://127.0.0.1:${apiPort}/?token=${adminToken}`);
  out(`  plain port      http://127.0.0.1:${httpPort}/   (with an Onion-Location header)`);
  out(`  health          http://127.0.0.1:${apiPort}/healthz`);
  out(`  try it          curl --socks5-hostname 127.0.0.1:${net.socksPort} http://${onion}/`);
  if (once) return;
  out('\nRunning. Press Ctrl-C to stop everything.');
  await new Promise<void>((resolve) => {
    onInterrupt = resolve;
    void bridge!.exited.then((code) => {
      out(`the bridge exited (${code})`);
      process.exitCode = 1;
      resolve();
    });
  });
}

const DEMO_FILE_BYTES = 3 * 1024 * 1024;
const FREE_BYTES = 512 * 1024;
const THROTTLE = 32 * 1024;
const UNPAID_SECONDS = 6;
// A fresh admin token per run: the demo prints it with the dashboard's URL.
const adminToken = randomBytes(18).toString('base64url');

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

/** The reference client, `torplus`, as a visitor runs it. */
function runClient(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(dirname(CLI_PATH), 'client', 'cli.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TORPLUS_HOME: join(runDir ?? tmpdir(), 'client'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

main()
  .then(async () => {
    out('\nStopping…');
    await cleanup();
    out('Stopped. Demo complete.');
  })
  .catch(async (err: unknown) => {
    out(`\n✗ ${(err as Error).message}`);
    await cleanup();
    process.exitCode = 1;
  });
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (onInterrupt) return onInterrupt();
    // Still starting: stop everything and leave.
    if (!cleaning) void cleanup().then(() => process.exit(130));
  });
}
