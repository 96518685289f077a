// A bridge as an Onionbalance backend (BALANCE_MASTER_ONION) with its payments in PostgreSQL, as a real
// process on the shared private Tor network: it prints the MASTER as its torplus= line, its own onion still
// answers (the frontend lists it), it beats into the instance registry while it runs and leaves it when it
// stops, and /healthz shows the database and the heartbeat.
import { jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PgInstanceRegistry } from '../src/cluster/instances.js';
import { startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { startLedger, type LedgerHandle } from '../src/devnet/ledger/ledger.js';
import { fundedAccount } from '../src/devnet/ledger/testing.js';
import { startPostgres, type Postgres } from '../src/devnet/postgres.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { makeMasterKey } from '../src/tor/onionbalance-key.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';

jest.setTimeout(180_000);
const TOKEN = 'e2e-backend-admin-token-0123456789';

describe('a bridge as an Onionbalance backend, on PostgreSQL', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-backend-e2e-'));
  let postgres: Postgres;
  let ledger: LedgerHandle;
  let bridge: BridgeProcess | undefined;
  let registry: PgInstanceRegistry;
  let master: string;
  let api: number;

  beforeAll(async () => {
    [postgres, ledger] = await Promise.all([startPostgres(), startLedger({ port: 0 })]);
    const url = await postgres.createDatabase('backend');
    registry = await PgInstanceRegistry.open(url);
    master = `${await makeMasterKey(join(dir, 'master.key'))}`;
    const publisher = await fundedAccount(ledger);
    const [http, apiPort] = await freePorts(2);
    api = apiPort!;
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: resolve('www'), TOR_DIR: join(dir, 'tor'), DATA_DIR: join(dir, 'data'), TOR_EXTRA_CONFIG: net.joinConfigFile,
        LISTEN_HOST: '127.0.0.1', HTTP_PORT: String(http), API_PORT: String(api), IPFS_ENABLED: 'false',
        seed: publisher.keypair.secret(), PP_ENV: 'local', HORIZON_URL: ledger.url,
        DATABASE_URL: url, BALANCE_MASTER_ONION: master, ADMIN_TOKEN: TOKEN,
      },
    });
  });
  afterAll(async () => {
    await bridge?.stop(5000);
    await registry?.close();
    await postgres?.destroy();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the master as the torplus= line, serves on its own onion, and is listed while it runs', async () => {
    expect(await bridge!.published(90_000)).toBe(master.endsWith('.onion') ? master : `${master}.onion`);
    const own = readFileSync(join(dir, 'tor', 'hidden_service', 'hostname'), 'utf8').trim();
    expect(own).not.toBe(master);
    expect(readFileSync(join(dir, 'tor', 'hidden_service', 'ob_config'), 'utf8')).toBe(`MasterOnionAddress ${master.replace(/\.onion$/, '')}.onion\n`);
    const r = await waitForOnion(`http://${own}/`, net.socksPort, { timeoutMs: 60_000 });
    expect(r.status).toBe(200);
    const listed = await waitUntil(() => registry.live(30_000), (l) => l.some((i) => i.onion === own));
    expect(listed.find((i) => i.onion === own)!.bytesServed).toBeGreaterThanOrEqual(0);
    const health = (await (await fetch(`http://127.0.0.1:${api}/healthz`)).json()) as { services: Record<string, Record<string, unknown>> };
    expect(health.services.database).toMatchObject({ ok: true, state: 'up', engine: 'postgres' });
    expect(health.services.instances).toMatchObject({ ok: true });
    // /metrics and the dashboard show every backend (here the one), as of its last heartbeat.
    const metrics = await (await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(metrics).toContain(`torplus_instance_live{onion="${own}"} 1`);
    const dashboard = await (await fetch(`http://127.0.0.1:${api}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(dashboard).toContain(`Bridges behind <code>${master.replace(/\.onion$/, '')}.onion</code>`);
    expect(dashboard).toContain(`${own} <span class="badge muted">this one</span>`);
  });

  it('leaves the registry when it stops', async () => {
    const own = readFileSync(join(dir, 'tor', 'hidden_service', 'hostname'), 'utf8').trim();
    expect(await bridge!.stop(10_000)).toBe(0);
    bridge = undefined;
    expect((await registry.all()).map((i) => i.onion)).not.toContain(own);
  });
});

async function waitUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}
