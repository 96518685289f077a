// Two bridges on the shared private Tor network, as issue 4 is checked: A publishes its site to IPFS
// and serves a CAR that an independent implementation (ipfs-car) unpacks to exactly www/; an edit
// republishes; B fills from A knowing only A's onion address; A is stopped; B serves A's content.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { runBridgeCommand, startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';
import { until } from './support/wait.js';

jest.setTimeout(180_000);

const IPFS_CAR = resolve('node_modules/.bin/ipfs-car');

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((res, rej) => {
    request({ host: '127.0.0.1', port, path, headers, agent: false }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (d: Buffer) => chunks.push(d));
      r.on('end', () => res({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on('error', rej);
    })
      .on('error', rej)
      .end();
  });
}

/** Every file under `dir`, relative path → contents. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

function ipfsLines(b: BridgeProcess): string[] {
  return b.lines.filter((l) => l.startsWith('ipfs='));
}

describe('IPFS: publish, trustless gateway, and fill between two bridges over Tor', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-ipfs-e2e-'));
  const www = join(dir, 'www');
  let a: BridgeProcess | undefined;
  let b: BridgeProcess | undefined;
  let aPorts: number[];
  let bPorts: number[];
  let aOnion: string;
  let firstRoot: string;
  /** A bridge's settings: its own folders under `dir`, both ports on loopback, the private network. */
  const bridgeEnv = (name: string, ports: number[], site: string, extra: Record<string, string> = {}) => ({
    WWW_DIR: site,
    TOR_DIR: join(dir, `tor-${name}`),
    DATA_DIR: join(dir, `data-${name}`),
    TOR_EXTRA_CONFIG: net.joinConfigFile,
    LISTEN_HOST: '127.0.0.1',
    HTTP_PORT: String(ports[0]),
    API_PORT: String(ports[1]),
    ...extra,
  });
  const bEnv = () => bridgeEnv('b', bPorts, join(dir, 'www-b'), { PEERS: aOnion, FILL_RESERVE_BYTES: '10M', FILL_INTERVAL_SECONDS: '3600' });

  beforeAll(async () => {
    cpSync(resolve('www'), www, { recursive: true });
    // A file of several blocks, so that CARs and fills carry a real DAG and not only leaves.
    writeFileSync(join(www, 'big.bin'), Buffer.alloc(1_500_000, 'torplus'));
    cpSync(resolve('www'), join(dir, 'www-b'), { recursive: true });
    [aPorts, bPorts] = [await freePorts(2), await freePorts(2)];
    a = startBridgeProcess({ env: bridgeEnv('a', aPorts, www, { DOMAIN: 'example.test', DNS_SERVERS: '127.0.0.1:9' }) });
    aOnion = await a.published(90_000);
    await until('an ipfs= line from A', () => ipfsLines(a!).length > 0, { timeoutMs: 30_000 });
    firstRoot = /^ipfs=\/ipfs\/(\S+)$/.exec(ipfsLines(a!)[0]!)![1]!;
  });

  afterAll(async () => {
    await Promise.all([a?.stop(5000), b?.stop(5000)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints exactly one ipfs= line with A's root, and the DNSLink record", () => {
    expect(ipfsLines(a!)).toEqual([`ipfs=/ipfs/${firstRoot}`]);
    expect(firstRoot).toMatch(/^bafy/);
    expect(a!.lines).toContain(`DNSLink: publish the TXT record "dnslink=/ipfs/${firstRoot}" on _dnslink.torplus.example.test, beside the torplus= record.`);
  });

  it('serves a CAR of the root that ipfs-car unpacks to exactly www/', async () => {
    const car = await get(aPorts[0]!, `/ipfs/${firstRoot}?format=car`);
    expect(car.status).toBe(200);
    expect(String(car.headers['content-type'])).toMatch(/^application\/vnd\.ipld\.car/);
    const carFile = join(dir, 'site.car');
    writeFileSync(carFile, car.body);
    const out = join(dir, 'unpacked');
    await promisify(execFile)(IPFS_CAR, ['unpack', carFile, '--output', out]);
    expect(tree(out)).toEqual(tree(www));
  });

  it('serves files under the root on the plain port, and counts the requests in the top list', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(aPorts[0]!, `/ipfs/${firstRoot}/index.html`);
      expect(r.status).toBe(200);
      expect(r.body.equals(readFileSync(join(www, 'index.html')))).toBe(true);
    }
    const top = await until('the root in the top list', async () => {
      const r = await get(aPorts[1]!, '/v1/ipfs/top?n=5');
      const body = JSON.parse(r.body.toString()) as { top: Array<{ cid: string; count: number; dagSize: number }> };
      return body.top.find((e) => e.cid === firstRoot);
    });
    expect(top.count).toBeGreaterThanOrEqual(3);
    expect(top.dagSize).toBeGreaterThan(1_500_000);
  });

  it('republishes within 5 s of an edit and prints the new root', async () => {
    const t0 = Date.now();
    writeFileSync(join(www, 'about.html'), '<p>edited</p>\n');
    await until('a second ipfs= line within 5 s of the edit', () => ipfsLines(a!).length === 2, { timeoutMs: 5_000 });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(ipfsLines(a!)[1]).not.toBe(ipfsLines(a!)[0]);
  });

  it("B fills from A by onion address alone; after A stops, B serves A's first root byte for byte", async () => {
    b = startBridgeProcess({ env: bEnv() });
    await b.published(90_000);
    const fill = await runBridgeCommand(['fill'], bEnv(), 150_000);
    expect(fill.code).toBe(0);
    // The summary names A as filled from, with at least A's first root (the most requested DAG).
    expect(fill.stdout).toMatch(/^fill: 1 of 1 peer ok; [1-9]\d* DAGs? filled/m);
    expect(fill.stdout).toContain(`ok       ${aOnion}`);
    await a!.stop(5000);
    a = undefined;
    const r = await get(bPorts[0]!, `/ipfs/${firstRoot}/index.html`);
    expect(r.status).toBe(200);
    expect(r.body.equals(readFileSync(resolve('www', 'index.html')))).toBe(true);
    const big = await get(bPorts[0]!, `/ipfs/${firstRoot}/big.bin`);
    expect(big.body.equals(Buffer.alloc(1_500_000, 'torplus'))).toBe(true);
  });
});
