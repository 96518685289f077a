// The bridge as a publisher runs it, on the shared private Tor network: fetched over its onion
// through the network's SOCKS port, restarted, killed, and with its upstream nginx going away.
import { readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { startNginx, type Nginx } from '../src/devnet/nginx.js';
import { startDnsmasq, type Dnsmasq } from '../src/devnet/dnsmasq.js';
import { socksGet } from '../src/devnet/socks-http.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';
import { alive, until } from './support/wait.js';

const WWW = resolve('www');
const INDEX = readFileSync(join(WWW, 'index.html'));

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

function healthz(port: number): Promise<{ status: number; body: any }> {
  return new Promise((res, rej) => {
    request({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (r) => {
      let t = '';
      r.on('data', (d) => (t += d));
      r.on('end', () => res({ status: r.statusCode!, body: JSON.parse(t) }));
    })
      .on('error', rej)
      .end();
  });
}

describe('the bridge on a private Tor network', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-e2e-'));
  const torDir = join(dir, 'tor');
  let nginx: Nginx | undefined;
  let dns: Dnsmasq | undefined;
  let bridge: BridgeProcess | undefined;
  let ports: number[];
  let onion: string;
  const env = () => ({
    WWW_DIR: WWW,
    TOR_DIR: torDir,
    DATA_DIR: join(dir, 'data'),
    TOR_EXTRA_CONFIG: net.joinConfigFile,
    LISTEN_HOST: '127.0.0.1',
    HTTP_PORT: String(ports[0]),
    API_PORT: String(ports[1]),
    UPSTREAM_URL: `http://127.0.0.1:${ports[2]}`,
    DOMAIN: 'example.test',
    // The TXT check asks this dnsmasq on loopback, never the machine's resolver.
    DNS_SERVERS: dns!.server,
    DNS_RETRY_SECONDS: '2',
  });
  const onionGet = (path = '/') => socksGet(`http://${onion}${path}`, { socksPort: net.socksPort, timeoutMs: 15_000 });

  beforeAll(async () => {
    ports = await freePorts(3);
    nginx = await startNginx({ port: ports[2]!, root: WWW });
    dns = await startDnsmasq({ records: { 'torplus.example.test': ['torplus=' + 'a'.repeat(56)] } });
    bridge = startBridgeProcess({ env: env() });
    onion = await bridge.published(90_000);
  });

  afterAll(async () => {
    await bridge?.stop(5000);
    await nginx?.stop();
    await dns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints exactly one torplus= line and the TXT instruction', async () => {
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(bridge!.lines.filter((l) => l.startsWith('torplus='))).toEqual([`torplus=${onion}`]);
    // The line after it (the bridge prints both at once; they are read one after the other).
    await until('the TXT instruction', () => bridge!.lines.some((l) => l.includes('TXT record on torplus.example.test')), { timeoutMs: 5000 });
  });

  it('serves www/ over the onion, byte for byte', async () => {
    const r = await waitForOnion(`http://${onion}/index.html`, net.socksPort, { timeoutMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body.equals(INDEX)).toBe(true);
  });

  it('keeps the onion key 0600 in a 0700 folder', () => {
    expect(statSync(join(torDir, 'hidden_service')).mode & 0o777).toBe(0o700);
    expect(statSync(join(torDir, 'hidden_service', 'hs_ed25519_secret_key')).mode & 0o777).toBe(0o600);
  });

  it('checks the TXT record: wrong while it names another onion, found once it names ours', async () => {
    const wrong = await until('the TXT check to find the wrong record', async () => {
      const d = (await healthz(ports[1]!)).body.services.dns;
      return d?.state === 'wrong' ? d : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    expect(wrong.detail).toContain(`torplus.example.test TXT "torplus=${onion.replace(/\.onion$/, '')}"`);
    await dns!.setRecords({ 'torplus.example.test': [`torplus=${onion}`] });
    // The check retries every RETRY; the e2e bridge sets it short.
    const found = await until('the TXT check to find our record', async () => {
      const d = (await healthz(ports[1]!)).body.services.dns;
      return d?.state === 'found' ? d : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    expect(found.ok).toBe(true);
  });

  it('reports tor, the onion and the upstream in /healthz', async () => {
    const h = await healthz(ports[1]!);
    expect(h.status).toBe(200);
    expect(h.body.ok).toBe(true);
    expect(h.body.services.tor.bootstrapped).toBe(true);
    expect(h.body.services.onion).toMatchObject({ published: true, address: onion });
    expect(h.body.services.upstream.upstreamReachable).toBe(true);
  });

  it('answers 502 while nginx is down, and recovers when it is back', async () => {
    await nginx!.stop();
    const down = await onionGet('/');
    expect(down.status).toBe(502);
    const h = await until('healthz to report the upstream down', async () => {
      const r = await healthz(ports[1]!);
      return r.body.services.upstream.upstreamReachable === false ? r : undefined;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    expect(h.status).toBe(503);
    nginx = await startNginx({ port: ports[2]!, root: WWW });
    const up = await onionGet('/index.html');
    expect(up.status).toBe(200);
    expect(up.body.equals(INDEX)).toBe(true);
  });

  it('restarts a tor killed with kill -9, and the site comes back', async () => {
    const before = (await healthz(ports[1]!)).body.services.tor.pid as number;
    expect(alive(before)).toBe(true);
    process.kill(before, 'SIGKILL');
    const after = await until('a new tor', async () => {
      const t = (await healthz(ports[1]!)).body.services.tor;
      return t.pid && t.pid !== before ? (t.pid as number) : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(alive(after)).toBe(true);
    const r = await waitForOnion(`http://${onion}/index.html`, net.socksPort, { timeoutMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body.equals(INDEX)).toBe(true);
  });

  it('stops on SIGTERM within 15 s with exit code 0, leaving no tor behind', async () => {
    const torPid = (await healthz(ports[1]!)).body.services.tor.pid as number;
    const started = Date.now();
    const code = await bridge!.stop(15_000);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(alive(bridge!.pid)).toBe(false);
    expect(alive(torPid)).toBe(false);
  });

  it('comes back after a restart with the same address, reachable again', async () => {
    bridge = startBridgeProcess({ env: env() });
    const again = await bridge.published(90_000);
    expect(again).toBe(onion);
    const r = await waitForOnion(`http://${onion}/index.html`, net.socksPort, { timeoutMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body.equals(INDEX)).toBe(true);
  });
});
