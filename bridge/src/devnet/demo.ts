// `npm run demo`: the whole flow offline. A private Tor network on loopback, the bridge on the
// sample www/, and a visitor fetching the site over the onion through that network's SOCKS port.
// `--once` exits after the fetch (0 on success, 1 with the failing step); otherwise it keeps
// running until Ctrl-C. Every process it starts is stopped on the way out.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startBridgeProcess, type BridgeProcess } from './bridge-process.js';
import { startTorNetwork, waitForOnion, type TorNetwork } from './tornet.js';
import { freePorts } from '../util/free-port.js';
import { startDnsmasq, type Dnsmasq } from './dnsmasq.js';

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
let cleaning: Promise<void> | undefined;
let onInterrupt: (() => void) | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await bridge?.stop(12_000);
    await net?.stop();
    await dns?.stop();
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
  const [httpPort, apiPort] = await freePorts(2);
  // A DNS server on loopback for example.test: the bridge's TXT check asks it, never the machine's resolver.
  dns = await startDnsmasq({ records: { 'torplus.example.test': [] } });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const onion = await step('Start the bridge on www/ and wait for its onion service to be published', async () => {
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: join(root, 'www'),
        TOR_DIR: join(stateDir, 'tor'),
        DATA_DIR: join(stateDir, 'data'),
        TOR_EXTRA_CONFIG: net!.joinConfigFile,
        LISTEN_HOST: '127.0.0.1',
        HTTP_PORT: String(httpPort),
        API_PORT: String(apiPort),
        DOMAIN: 'example.test',
        DNS_SERVERS: dns!.server,
        DNS_RETRY_SECONDS: '1',
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

  out('\nSummary');
  out(`  onion address   ${onion}`);
  out(`  DNS TXT record  torplus=${onion}   (on torplus.example.test)`);
  out(`  fetched         ${page.body.length} bytes of www/index.html over Tor`);
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
