// The operator's views as issue 8 is checked: a bridge on the private Tor network with ADMIN_TOKEN;
// its API root refuses a visitor without the token; headless Chromium (Debian's) given /?token= renders
// the onion address, the torplus=<onion> record and a QR code; /metrics answers with the token.
import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { launchChromium } from '../src/devnet/chromium.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';

jest.setTimeout(120_000);

const TOKEN = 'e2e-dashboard-token-0123456789';
const ARTIFACTS = resolve('test-artifacts');

describe('the dashboard and /metrics of a running bridge', () => {
  const net = sharedTorNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'torplus-dash-e2e-'));
  let bridge: BridgeProcess | undefined;
  let api: number;
  let onion: string;

  beforeAll(async () => {
    const [http, apiPort] = await freePorts(2);
    api = apiPort!;
    bridge = startBridgeProcess({
      env: {
        WWW_DIR: resolve('www'),
        TOR_DIR: join(dir, 'tor'),
        DATA_DIR: join(dir, 'data'),
        TOR_EXTRA_CONFIG: net.joinConfigFile,
        LISTEN_HOST: '127.0.0.1',
        HTTP_PORT: String(http),
        API_PORT: String(api),
        DOMAIN: 'example.test',
        DNS_SERVERS: '127.0.0.1:9',
        ADMIN_TOKEN: TOKEN,
      },
    });
    onion = await bridge.published(90_000);
  });
  afterAll(async () => {
    await bridge?.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the API root without the token, and reveals nothing', async () => {
    const r = await fetch(`http://127.0.0.1:${api}/`);
    expect(r.status).toBe(401);
    expect(await r.text()).not.toContain(onion.slice(0, 20));
  });

  it('renders the onion, the torplus= record and a QR code in headless Chromium', async () => {
    const chromium = await launchChromium();
    try {
      const page = await chromium.browser.newPage();
      // Not networkidle: the page keeps its live-events stream open.
      await page.goto(`http://127.0.0.1:${api}/?token=${TOKEN}`, { waitUntil: 'load' });
      expect(new URL(page.url()).search).toBe('');
      const text = (await page.evaluate('document.body.innerText')) as string;
      expect(text).toContain(onion);
      expect(text).toContain(`torplus=${onion.replace(/\.onion$/, '')}`);
      expect(await page.$$eval('svg', (els) => els.length)).toBeGreaterThan(0);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-e2e.png'), fullPage: true });
    } finally {
      await chromium.close();
    }
  });

  it('serves /metrics in Prometheus format with the token only', async () => {
    expect((await fetch(`http://127.0.0.1:${api}/metrics`)).status).toBe(401);
    const r = await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/^torplus_tor_bootstrapped 1$/m);
    expect(text).toMatch(/^torplus_onion_published 1$/m);
    expect(text).toMatch(/^# TYPE torplus_payment_verification_seconds histogram$/m);
  });
});
