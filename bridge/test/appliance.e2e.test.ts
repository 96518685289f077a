// The Docker appliance without a Docker engine (none runs on these machines): the compose file is
// validated by docker-compose itself; every path, port and variable that it and the Dockerfiles name
// must exist in the project and in the configuration schema; and the image's entrypoint script runs
// as a plain process with the image's layout, against the shared private Tor network.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { configSchema } from '../src/config/schema.js';
import { startBridgeProcess } from '../src/devnet/bridge-process.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { freePorts } from '../src/util/free-port.js';
import { sharedTorNetwork } from './support/tornet.js';

jest.setTimeout(120_000);

const ROOT = resolve('.');
const SEED = 'SCZANGBA5YHTNYVVV4C3U252E2B6P6F5T3U6MM63WBSBZATAQI3EBTQ4';
const SETTINGS = new Set(Object.keys(configSchema.shape));

/** The instructions of a Dockerfile, continuation lines joined: [instruction, rest]. */
function dockerfile(name: string): Array<[string, string]> {
  const text = readFileSync(join(ROOT, name), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l)!;
      return [m[1]!.toUpperCase(), m[2]!];
    });
}

/** ENV lines as a map (the `KEY=value KEY=value` form). */
function envOf(lines: Array<[string, string]>): Map<string, string> {
  const env = new Map<string, string>();
  for (const [i, rest] of lines) if (i === 'ENV') for (const m of rest.matchAll(/(\w+)=(\S+)/g)) env.set(m[1]!, m[2]!);
  return env;
}

describe('the Docker appliance, checked without a Docker engine', () => {
  let compose: any;

  beforeAll(async () => {
    const { stdout } = await promisify(execFile)('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', seed: SEED } });
    compose = parse(stdout);
  });

  it('docker-compose validates the file: bridge and web, ports 80 and 8000, seed and PP_ENV, /opt/www, tor and ssl_torplus', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['bridge', 'web']);
    const bridge = compose.services.bridge;
    expect(bridge.ports.map((p: any) => p.published)).toEqual(expect.arrayContaining([80, 8000]));
    expect(bridge.environment).toMatchObject({ seed: SEED, PP_ENV: 'test', UPSTREAM_URL: 'http://web:80' });
    const volumes = bridge.volumes.map((v: any) => (typeof v === 'string' ? v : `${v.source}:${v.target}`)).join('\n');
    expect(volumes).toMatch(/\/www:\/opt\/www/);
    expect(volumes).toMatch(/\/tor:\/var\/lib\/torplus\/tor/);
    expect(volumes).toMatch(/\/ssl_torplus:\/etc\/torplus\/ssl/);
    expect(bridge.restart).toBe('unless-stopped');
    expect(compose.services.web.volumes.join?.('') ?? JSON.stringify(compose.services.web.volumes)).toMatch(/opt\/www/);
  });

  it('names only settings the bridge knows, and folders and ports that agree with the image', () => {
    const bridge = compose.services.bridge;
    const unknown = Object.keys(bridge.environment).filter((k) => !SETTINGS.has(k));
    expect(unknown).toEqual([]);
    const image = envOf(dockerfile('Dockerfile.bridge'));
    for (const k of image.keys()) if (k !== 'NODE_ENV') expect(SETTINGS.has(k)).toBe(true);
    // The container ports compose maps onto are the ones the image's bridge listens on.
    const targets = bridge.ports.map((p: any) => String(p.target)).sort();
    expect(targets).toEqual([image.get('API_PORT'), image.get('HTTPS_PORT'), image.get('HTTP_PORT')].sort());
    // Compose's folders are the image's, and the host folders exist in the project.
    for (const k of ['WWW_DIR', 'TOR_DIR', 'SSL_DIR', 'DATA_DIR']) expect(bridge.environment[k]).toBe(image.get(k));
    for (const host of ['www', 'tor', 'ssl_torplus', 'web/nginx.conf']) expect(existsSync(join(ROOT, host))).toBe(true);
  });

  it('Dockerfile.bridge: FROM Node 22, a HEALTHCHECK on /healthz, a non-root USER, tini and the start script; every COPY exists', () => {
    const lines = dockerfile('Dockerfile.bridge');
    const from = lines.filter(([i]) => i === 'FROM').map(([, r]) => r);
    expect(from.every((f) => /^node:22[-\w.]*( AS \w+)?$/i.test(f))).toBe(true);
    expect(lines.find(([i]) => i === 'HEALTHCHECK')?.[1]).toMatch(/\/healthz/);
    const user = lines.filter(([i]) => i === 'USER').map(([, r]) => r);
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(lines.find(([i]) => i === 'ENTRYPOINT')?.[1]).toBe('["/usr/bin/tini", "--", "/app/scripts/start.sh"]');
    for (const [i, rest] of lines) {
      if (i !== 'COPY' || rest.startsWith('--from')) continue;
      for (const src of rest.split(/\s+/).slice(0, -1)) expect(existsSync(join(ROOT, src))).toBe(true);
    }
    expect(statSync(join(ROOT, 'scripts/start.sh')).mode & 0o111).not.toBe(0);
  });

  it('Dockerfile.web: FROM nginx, with the project’s nginx.conf and a health check', () => {
    const lines = dockerfile('Dockerfile.web');
    expect(lines[0]).toEqual(['FROM', expect.stringMatching(/^nginx:/)]);
    expect(lines.find(([i]) => i === 'COPY')?.[1]).toBe('web/nginx.conf /etc/nginx/conf.d/default.conf');
    expect(lines.find(([i]) => i === 'HEALTHCHECK')?.[1]).toMatch(/nginx-health/);
    expect(readFileSync(join(ROOT, 'web/nginx.conf'), 'utf8')).toMatch(/location = \/nginx-health/);
  });

  describe("the image's entrypoint as a plain process", () => {
    const net = sharedTorNetwork();
    const dir = mkdtempSync(join(tmpdir(), 'torplus-appliance-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('scripts/start.sh starts the bridge on the private Tor network, serves the site over the onion, and stops on SIGTERM', async () => {
      const [http, https, api] = await freePorts(3);
      // The image's layout, rooted in a temp dir.
      const env = {
        WWW_DIR: join(ROOT, 'www'),
        TOR_DIR: join(dir, 'var/lib/torplus/tor'),
        DATA_DIR: join(dir, 'var/lib/torplus/data'),
        SSL_DIR: join(dir, 'etc/torplus/ssl'),
        HTTP_PORT: String(http),
        HTTPS_PORT: String(https),
        API_PORT: String(api),
        LISTEN_HOST: '127.0.0.1',
        TOR_EXTRA_CONFIG: net.joinConfigFile,
      };
      const bridge = startBridgeProcess({ env, command: [join(ROOT, 'scripts/start.sh'), 'start'] });
      try {
        const onion = await bridge.published(90_000);
        const r = await waitForOnion(`http://${onion}/`, net.socksPort, { timeoutMs: 60_000 });
        expect(r.status).toBe(200);
        expect(r.body.equals(readFileSync(join(ROOT, 'www/index.html')))).toBe(true);
      } finally {
        expect(await bridge.stop(15_000)).toBe(0);
      }
    });
  });
});
