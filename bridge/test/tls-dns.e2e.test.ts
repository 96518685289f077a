// TLS and DNS as issue 6 is checked, on the shared private Tor network: the bridge runs with
// DOMAIN=example.test, ACME against pebble (HTTP-01 validated on the bridge's HTTP_PORT), DNS_SERVERS a
// dnsmasq on loopback and SSL_DIR. fullchain.pem appears and verifies against pebble's root; HTTPS is
// served with it; `doctor` fails while the TXT record names another onion and passes once it is right;
// `torplus resolve example.test --dns` prints the bridge's onion.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { onionAddressOf } from '../src/tor/onion-key.js';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CLI_PATH, runBridgeCommand, startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { startDnsmasq, type Dnsmasq } from '../src/devnet/dnsmasq.js';
import { startPebble, type Pebble } from '../src/devnet/pebble.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';
import { until } from './support/wait.js';

jest.setTimeout(180_000);

const CLIENT = join(dirname(CLI_PATH), 'client', 'cli.js');
/** A valid onion address that is not the bridge's. */
const OTHER = onionAddressOf(randomBytes(32));

describe('HTTPS with ACME, the TXT check, doctor and the client resolver', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-tls-e2e-'));
  const ssl = join(dir, 'ssl');
  let pebble: Pebble | undefined;
  let dns: Dnsmasq | undefined;
  let bridge: BridgeProcess | undefined;
  let ports: number[];
  let onion: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    cpSync(resolve('www'), join(dir, 'www'), { recursive: true });
    ports = await freePorts(3);
    // Another onion's record at first: doctor must fail on it.
    dns = await startDnsmasq({ records: { 'torplus.example.test': [`torplus=${OTHER}`] }, hosts: ['torplus.example.test'], ttl: 1 });
    pebble = await startPebble({ httpPort: ports[0]!, dnsServer: dns.server });
    env = {
      WWW_DIR: join(dir, 'www'),
      TOR_DIR: join(dir, 'tor'),
      DATA_DIR: join(dir, 'data'),
      SSL_DIR: ssl,
      TOR_EXTRA_CONFIG: net.joinConfigFile,
      LISTEN_HOST: '127.0.0.1',
      HTTP_PORT: String(ports[0]),
      API_PORT: String(ports[1]),
      HTTPS_PORT: String(ports[2]),
      DOMAIN: 'example.test',
      ACME_EMAIL: 'ops@example.test',
      ACME_DIRECTORY: pebble.directoryUrl,
      ACME_CA_FILE: pebble.caFile,
      DNS_SERVERS: dns.server,
      DNS_RETRY_SECONDS: '1',
    };
    bridge = startBridgeProcess({ env });
    onion = await bridge.published(90_000);
  });

  afterAll(async () => {
    await bridge?.stop(5000);
    await pebble?.stop();
    await dns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('obtains a certificate from pebble: fullchain.pem verifies against its root, names torplus.example.test, key 0600', async () => {
    await until('fullchain.pem', () => existsSync(join(ssl, 'fullchain.pem')) && existsSync(join(ssl, 'privkey.pem')), { timeoutMs: 60_000, intervalMs: 250 }).catch((err: Error) => {
      throw new Error(`${err.message}; the bridge said:\n${bridge!.lines.filter((l) => /acme|tls|certificate/i.test(l)).slice(-10).join('\n')}`);
    });
    const chain = readFileSync(join(ssl, 'fullchain.pem'), 'utf8');
    const certs = chain.split(/(?=-----BEGIN CERTIFICATE-----)/).map((p) => new X509Certificate(p));
    const root = new X509Certificate(await pebble!.rootCaPem());
    expect(certs[0]!.subjectAltName).toContain('DNS:torplus.example.test');
    expect(certs[0]!.verify(certs[1]!.publicKey)).toBe(true);
    expect(certs.at(-1)!.verify(root.publicKey)).toBe(true);
    expect(statSync(join(ssl, 'privkey.pem')).mode & 0o777).toBe(0o600);
  });

  it('serves HTTPS on HTTPS_PORT with that certificate, reloaded without a restart', async () => {
    const cn = await until('HTTPS with the ACME certificate', () =>
      new Promise<string | undefined>((res) => {
        request({ host: '127.0.0.1', port: ports[2], path: '/', servername: 'torplus.example.test', rejectUnauthorized: false }, (r) => {
          const cert = (r.socket as unknown as { getPeerCertificate(): { subjectaltname?: string } }).getPeerCertificate();
          r.resume();
          res(cert.subjectaltname?.includes('torplus.example.test') ? cert.subjectaltname : undefined);
        }).on('error', () => res(undefined)).end();
      }),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(cn).toContain('DNS:torplus.example.test');
  });

  it("serves HTTPS on the onion's port 443 over Tor, with the ACME certificate", async () => {
    const { SocksClient } = await import('socks');
    const tls = await import('node:tls');
    const reply = await until('HTTPS over the onion', async () => {
      try {
        const { socket } = await SocksClient.createConnection({
          proxy: { host: '127.0.0.1', port: net.socksPort, type: 5 },
          command: 'connect',
          destination: { host: onion, port: 443 },
          timeout: 15_000,
        });
        return await new Promise<{ san: string; head: string } | undefined>((res) => {
          const t = tls.connect({ socket, servername: 'torplus.example.test', rejectUnauthorized: false }, () => {
            const san = t.getPeerCertificate().subjectaltname ?? '';
            t.write('GET / HTTP/1.1\r\nHost: torplus.example.test\r\nConnection: close\r\n\r\n');
            let text = '';
            t.on('data', (d) => (text += d));
            t.on('end', () => res({ san, head: text.slice(0, 200) }));
          });
          t.on('error', () => res(undefined));
          t.setTimeout(15_000, () => (t.destroy(), res(undefined)));
        });
      } catch {
        return undefined;
      }
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    expect(reply.san).toContain('DNS:torplus.example.test');
    expect(reply.head).toMatch(/^HTTP\/1\.1 200/);
  });

  it('doctor fails while the TXT record names another onion, and passes once it is right', async () => {
    const before = await runBridgeCommand(['doctor'], env, 60_000);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain(`✗ TXT record: torplus.example.test names ${OTHER}, not this bridge's onion`);
    expect(before.stdout).toContain(`fix: replace it with torplus.example.test TXT "torplus=${onion.replace(/\.onion$/, '')}"`);
    await dns!.setRecords({ 'torplus.example.test': [`torplus=${onion}`] });
    const after = await runBridgeCommand(['doctor'], env, 60_000);
    expect(`${after.code}\n${after.stdout}`).toMatch(/^0\n/);
    expect(after.stdout).toMatch(/✓ TXT record: torplus\.example\.test names this onion/);
    expect(after.stdout).toMatch(/✓ certificate: valid for torplus\.example\.test/);
  });

  it('torplus resolve example.test --dns prints the onion', async () => {
    const r = await promisify(execFile)(process.execPath, [CLIENT, 'resolve', 'example.test', '--dns', dns!.server], { env: { PATH: process.env.PATH ?? '', TORPLUS_HOME: join(dir, 'client') } });
    expect(r.stdout.trim()).toBe(onion);
  });
});
