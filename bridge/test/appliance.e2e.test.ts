// The Docker appliance without a Docker engine (none runs on these machines): the compose file is
// validated by docker-compose itself; every path, port and variable that it and the Dockerfiles name
// must exist in the project and in the configuration schema. The image's entrypoint runs as a plain
// process with the image's layout in appliance-entrypoint.e2e.test.ts.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { configSchema } from '../src/config/schema.js';
import { dockerfile as readDockerfile, envOf, runtimeStage } from './support/dockerfile.js';

jest.setTimeout(120_000);

const ROOT = resolve('.');
const SEED = 'SCZANGBA5YHTNYVVV4C3U252E2B6P6F5T3U6MM63WBSBZATAQI3EBTQ4';
const SETTINGS = new Set(Object.keys(configSchema.shape));
const dockerfile = (name: string) => readDockerfile(ROOT, name);

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
    expect(volumes).toMatch(/\/tor:\/root\/tor(:|$)/m);
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

  it('Dockerfile.bridge: FROM Node 22, a HEALTHCHECK on /healthz, tini and the entrypoint that drops to the image’s user; every COPY exists', () => {
    const lines = dockerfile('Dockerfile.bridge');
    const from = lines.filter(([i]) => i === 'FROM').map(([, r]) => r);
    expect(from.every((f) => /^node:22[-\w.]*( AS \w+)?$/i.test(f))).toBe(true);
    expect(lines.find(([i]) => i === 'HEALTHCHECK')?.[1]).toMatch(/\/healthz/);
    expect(lines.find(([i]) => i === 'ENTRYPOINT')?.[1]).toBe('["/usr/bin/tini", "--", "/app/scripts/docker-entrypoint.sh"]');
    // No USER: the container starts as root only for the entrypoint, which gives the mounted folders
    // to the image's user and runs the bridge as that uid (proven in appliance-entrypoint.e2e.test.ts).
    // A USER line would keep it from chowning; a root one would be worse. Both must name the same uid.
    expect(lines.filter(([i]) => i === 'USER')).toEqual([]);
    const useradd = /useradd --uid (\d+) /.exec(lines.find(([i, r]) => i === 'RUN' && r.includes('useradd'))?.[1] ?? '');
    const entrypoint = readFileSync(join(ROOT, 'scripts/docker-entrypoint.sh'), 'utf8');
    expect(useradd?.[1]).toBe('10001');
    expect(entrypoint).toMatch(/^uid=10001 gid=10001$/m);
    const copies = runtimeStage(lines).filter(([i]) => i === 'COPY').map(([, r]) => r);
    expect(copies).toEqual(expect.arrayContaining(['scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh', 'scripts/start.sh ./scripts/start.sh']));
    for (const [i, rest] of lines) {
      if (i !== 'COPY' || rest.startsWith('--from')) continue;
      for (const src of rest.split(/\s+/).slice(0, -1)) expect(existsSync(join(ROOT, src))).toBe(true);
    }
    for (const script of ['scripts/start.sh', 'scripts/docker-entrypoint.sh']) expect(statSync(join(ROOT, script)).mode & 0o111).not.toBe(0);
  });

  it('docker-compose.scaled.yml validates: PostgreSQL with its password from a secret on a named volume, the frontend, scalable bridges as backends of the master', async () => {
    const master = 'a'.repeat(56);
    const { stdout } = await promisify(execFile)('docker-compose', ['-f', 'docker-compose.scaled.yml', 'config'], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', seed: SEED, BALANCE_MASTER_ONION: master },
    });
    const scaled = parse(stdout);
    expect(Object.keys(scaled.services).sort()).toEqual(['bridge', 'db', 'frontend', 'web']);
    const { db, frontend, bridge } = scaled.services;
    expect(db.image).toMatch(/^postgres:/);
    expect(db.environment.POSTGRES_PASSWORD_FILE).toBe('/run/secrets/db_password');
    expect(db.volumes.map((v: any) => (typeof v === 'string' ? v : `${v.source}:${v.target}`)).join()).toMatch(/^torplus-db:\/var\/lib\/postgresql\/data/);
    expect(scaled.secrets.db_password.file).toMatch(/db_password\.txt$/);
    expect(frontend.command).toEqual(['balance']);
    expect(bridge.ports).toBeUndefined(); // replicas cannot share host ports: the master onion is the way in
    expect(bridge.environment).toMatchObject({ BALANCE_MASTER_ONION: master, DATABASE_URL: expect.stringMatching(/^postgres:\/\/torplus@db:5432\//), DATABASE_PASSWORD_FILE: '/run/secrets/db_password', UPSTREAM_URL: 'http://web:80' });
    expect(bridge.environment.DATABASE_URL).not.toMatch(/:[^/@]*@/); // no password in the URL
    for (const s of [frontend, bridge]) expect(Object.keys(s.environment).filter((k) => !SETTINGS.has(k))).toEqual([]);
    // Without the master's address, compose refuses to start the bridges (they would be separate sites).
    await expect(promisify(execFile)('docker-compose', ['-f', 'docker-compose.scaled.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } }))
      .rejects.toThrow(/BALANCE_MASTER_ONION/);
  });

  it('Dockerfile.web: FROM nginx, with the project’s nginx.conf and a health check', () => {
    const lines = dockerfile('Dockerfile.web');
    expect(lines[0]).toEqual(['FROM', expect.stringMatching(/^nginx:/)]);
    expect(lines.find(([i]) => i === 'COPY')?.[1]).toBe('web/nginx.conf /etc/nginx/conf.d/default.conf');
    expect(lines.find(([i]) => i === 'HEALTHCHECK')?.[1]).toMatch(/nginx-health/);
    expect(readFileSync(join(ROOT, 'web/nginx.conf'), 'utf8')).toMatch(/location = \/nginx-health/);
  });
});
