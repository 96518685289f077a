// A proxy worker process (PROXY_WORKERS > 1), forked by ProxyWorkerPool through node:cluster. It
// runs the same servers and forwarder as the single-process gateway; node:cluster shares the plain
// port and the onion listener's port between the workers. The primary keeps the health probe.
//
// Runs straight from the TypeScript source under jest (type stripping): erasable TypeScript only.
import { closeGracefully, listen } from './listeners.js';
import { createProxyServers } from './proxy-servers.js';
import { RemoteVisitorMeter } from './meter/remote-visitor-meter.js';
import { paywallOf } from './paywall/paywall.js';
import { CertStore } from '../tls/cert-store.js';
import { certStoreSource } from '../tls/cert-source.js';
import type { ToPrimary, ToWorker, WorkerConfig } from './worker-protocol.js';

const config = JSON.parse(process.env.TORPLUS_PROXY_WORKER ?? 'null') as WorkerConfig | null;
if (!config || typeof process.send !== 'function') {
  process.stderr.write('proxy-worker: start the bridge instead; this file runs as its worker process\n');
  process.exit(2);
}

function send(m: ToPrimary, done?: () => void): void {
  if (!process.connected) return done?.();
  try {
    process.send!(m, undefined, {}, done ? () => done() : undefined);
  } catch {
    done?.(); // the channel just closed: 'disconnect' follows
  }
}

// Payments: the Meter is in the primary; this mirrors what the hot path needs and reports bytes.
const remoteMeter = config.metered ? new RemoteVisitorMeter({ send, ...(config.paywall ? { paywall: paywallOf(config.paywall) } : {}) }) : undefined;

// The primary is gone (exited, crashed or was killed): so are we.
process.on('disconnect', () => process.exit(0));

// HTTPS: this worker's own watch of SSL_DIR, so a renewed certificate reaches it without the primary.
const certs = config.tls ? new CertStore({ dir: config.tls.sslDir }) : undefined;
certs?.on('error', (err) => send({ t: 'log', level: 'debug', message: `certificate: ${err.message}` }));
if (certs) await certs.start();

let onionAddress = config.onionAddress;
let lastErrorSentAt = 0;
const servers = createProxyServers({
  upstream: new URL(config.upstream),
  routes: (config.routes ?? []).map(([prefix, upstream, metered]) => ({ prefix, upstream: new URL(upstream), ...(metered === false ? { metered } : {}) })),
  onionAddress: () => onionAddress,
  onUpstreamError: (err) => {
    // The primary probes the upstream itself; this only gives its health a reason, at most once a second.
    const now = Date.now();
    if (now - lastErrorSentAt < 1000) return;
    lastErrorSentAt = now;
    send({ t: 'upstream-error', message: err.message });
  },
  onUpgradeError: (err) => send({ t: 'log', level: 'debug', message: `upgrade tunnel failed: ${err.message}` }),
  onReject: (reason) => send({ t: 'log', level: 'debug', message: `closed an onion connection: ${reason}` }),
  headerTimeoutMs: config.headerTimeoutMs,
  meter: remoteMeter?.meter,
  tls: certs ? certStoreSource(certs) : undefined,
});

let stopping = false;
async function stop(drainMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const https = servers.https;
  await Promise.all([
    closeGracefully(servers.plain, drainMs),
    closeGracefully(servers.onionTcp, drainMs),
    https ? closeGracefully(https.plain, drainMs) : undefined,
    https ? closeGracefully(https.onionTcp, drainMs) : undefined,
  ]);
  servers.onionHttp.closeAllConnections();
  https?.onionHttps.closeAllConnections();
  certs?.stop();
  servers.closeForwarders();
  // The bytes counted since the last batch go to the primary before we exit.
  if (remoteMeter) await new Promise<void>((r) => (setTimeout(r, 1000).unref(), remoteMeter.close(r)));
  process.exit(0);
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'meter-state':
    case 'meter-reserved':
      remoteMeter?.receive(m);
      break;
    case 'onion-address':
      onionAddress = m.address;
      break;
    case 'tls-reload':
      void certs?.reload();
      break;
    case 'stop':
      void stop(m.drainMs);
      break;
  }
});
// SIGTERM/SIGINT reach the whole process group on Ctrl-C: the primary decides when we stop.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void stop(config.drainMs));

try {
  const onionPort = await listen(servers.onionTcp, config.onionPort, '127.0.0.1');
  const httpPort = await listen(servers.plain, config.httpPort, config.listenHost);
  if (servers.https && config.tls) {
    await listen(servers.https.onionTcp, config.tls.onionTlsPort, '127.0.0.1');
    await listen(servers.https.plain, config.tls.httpsPort, config.listenHost);
  }
  send({ t: 'ready', onionPort, httpPort });
} catch (err) {
  send({ t: 'failed', message: (err as Error).message });
  process.exit(1);
}
