// End to end over the shared private Tor network: a local HTTP server published as an onion service by one
// extra tor, fetched through the network's client tor.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  assertPrivateTorConfig,
  startOnionServiceTor,
  waitForOnion,
  type OnionServiceTor,
} from '../src/devnet/tornet.js';
import { socksGet } from '../src/devnet/socks-http.js';
import { hasSharedTorNetwork, sharedTorNetwork } from './support/tornet.js';

const BODY = 'hello from the private onion: torplus e2e\n';
const describeTor = hasSharedTorNetwork() ? describe : describe.skip;

describeTor('private Tor network (shared, from global setup)', () => {
  let server: http.Server;
  let onionTor: OnionServiceTor | undefined;
  let serviceStartedAt = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-path': req.url ?? '' });
      res.end(BODY);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    serviceStartedAt = performance.now();
    onionTor = await startOnionServiceTor({ joinConfig: sharedTorNetwork().joinConfig, targetPort: port });
  });

  afterAll(async () => {
    await onionTor?.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('joinConfig is loopback-only and a TestingTorNetwork', () => {
    const { joinConfig } = sharedTorNetwork();
    expect(joinConfig).toMatch(/^TestingTorNetwork 1$/m);
    expect(joinConfig).toMatch(/^UseEntryGuards 0$/m);
    const auths = joinConfig.split('\n').filter((l) => l.startsWith('DirAuthority '));
    expect(auths).toHaveLength(3);
    for (const line of auths) expect(line).toMatch(/ 127\.0\.0\.1:\d+ [0-9A-F]{40}$/);
    expect(joinConfig).not.toMatch(/DataDirectory|SocksPort|ORPort|DirPort /);
  });

  test('an onion service on the network answers through the client', async () => {
    const { socksPort } = sharedTorNetwork();
    const url = `http://${onionTor!.onion}/hello?x=1`;
    const first = await waitForOnion(url, socksPort, { timeoutMs: 60_000 });
    const upSecs = ((performance.now() - serviceStartedAt) / 1000).toFixed(1);
    expect(first.status).toBe(200);
    expect(first.body.toString('utf8')).toBe(BODY);
    expect(first.headers['x-path']).toBe('/hello?x=1');

    // A second fetch reuses the descriptor and should be quick.
    const second = await socksGet(url, { socksPort, timeoutMs: 15_000 });
    expect(second.status).toBe(200);
    expect(second.body.toString('utf8')).toBe(BODY);
    console.log(
      `onion reachable ${upSecs} s after its tor started; first fetch ${first.totalMs.toFixed(0)} ms, ` +
        `second fetch ${second.totalMs.toFixed(0)} ms (first byte ${second.firstByteMs.toFixed(0)} ms)`,
    );
  }, 75_000);
});

describe('assertPrivateTorConfig (runs without a network)', () => {
  const fp = 'A'.repeat(40);
  const auth = (addr: string): string => `DirAuthority a1 orport=5000 no-v2 v3ident=${'B'.repeat(40)} ${addr} ${fp}`;

  test('accepts a loopback TestingTorNetwork and DisableNetwork 1', () => {
    expect(() => assertPrivateTorConfig(`TestingTorNetwork 1\n${auth('127.0.0.1:7000')}\n`)).not.toThrow();
    expect(() => assertPrivateTorConfig('DisableNetwork 1\n')).not.toThrow();
  });

  test('refuses anything that could reach the public network', () => {
    expect(() => assertPrivateTorConfig('')).toThrow(/neither/);
    expect(() => assertPrivateTorConfig('TestingTorNetwork 1\n')).toThrow(/without DirAuthority/);
    expect(() => assertPrivateTorConfig(`TestingTorNetwork 1\n${auth('198.51.100.7:80')}\n`)).toThrow(/non-loopback/);
    expect(() => assertPrivateTorConfig(`TestingTorNetwork 1\n${auth('127.0.0.1:7000')}\nUseBridges 1\n`)).toThrow(/Bridge/);
  });

  test('startOnionServiceTor refuses a config without the private network', async () => {
    await expect(startOnionServiceTor({ joinConfig: 'SocksPort 0', targetPort: 1 })).rejects.toThrow(/refusing/);
  });
});
