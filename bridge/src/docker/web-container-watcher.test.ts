import { Writable } from 'node:stream';
import { join } from 'node:path';
import { createLogger } from '../log/logger.js';
import { FakeDocker } from './test-support/fake-docker.js';
import { WebContainerWatcher, type WebContainerWatcherOptions } from './web-container-watcher.js';

// A real dockerode client against a fake Docker Engine API on a Unix socket (test-support/fake-docker.ts).

const POLL = 20;
let lines: { level: string; message: string }[] = [];
const log = createLogger({
  level: 'debug',
  json: true,
  stream: new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }),
});
const logged = (re: RegExp) => lines.filter((l) => re.test(l.message));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}; log: ${JSON.stringify(lines.map((l) => l.message))}`);
    await sleep(5);
  }
}

let fake: FakeDocker;
let watcher: WebContainerWatcher | undefined;
const watch = async (o: Partial<WebContainerWatcherOptions> = {}) => {
  watcher = new WebContainerWatcher({ socketPath: fake.socketPath, container: 'web', project: 'torplus', pollMs: POLL, log, ...o });
  await watcher.start();
  return watcher;
};
const webLabels = (project = 'torplus') => ({ 'com.docker.compose.service': 'web', 'com.docker.compose.project': project });

beforeEach(async () => {
  lines = [];
  fake = await FakeDocker.start();
});
afterEach(async () => {
  await watcher?.stop();
  watcher = undefined;
  await fake.dispose();
});

test('no socket: says once that it is not watching, healthy, and asks nothing', async () => {
  const socketPath = join(fake.dir, 'absent.sock');
  const w = await watch({ socketPath });
  await sleep(POLL * 4);
  expect(w.health()).toMatchObject({ ok: true, watching: false, detail: `not watching the web container: no Docker socket at ${socketPath} (optional; see README)` });
  expect(logged(/not watching/)).toHaveLength(1);
  expect(fake.requests).toEqual([]);
});

test('finds the web container by its compose service and project labels', async () => {
  fake.add({ name: 'other-web-1', labels: webLabels('other'), health: 'unhealthy' });
  fake.add({ name: 'web', health: 'unhealthy' }); // a plain name only counts when no label matches
  const web = fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  const w = await watch();
  expect(w.health()).toMatchObject({ ok: true, watching: true, container: 'torplus-web-1', id: web.id.slice(0, 12), health: 'healthy', running: true });
  expect(fake.requests[0]).toMatch(/^GET \/containers\/json\?all=true&filters=/);
  expect(decodeURIComponent(fake.requests[0]!)).toContain('"com.docker.compose.service=web","com.docker.compose.project=torplus"');
  expect(fake.unknown).toEqual([]);
  expect(logged(/^watching web container torplus-web-1/)).toHaveLength(1);
});

test('falls back to a plain container name; says what to check when there is none', async () => {
  const w = await watch({ container: 'mysite', project: undefined });
  expect(w.health()).toMatchObject({ ok: true, watching: false, state: 'not-found' });
  expect(w.health().detail).toMatch(/no container for compose service "mysite".*check the service name/);
  fake.add({ name: 'mysite', health: 'healthy' });
  await waitFor('found by name', () => w.health().watching === true);
  expect(w.health()).toMatchObject({ container: 'mysite', health: 'healthy' });
  expect(logged(/no container for compose service/)).toHaveLength(1);
});

test('health transitions are logged and reported; no restart unless asked', async () => {
  const web = fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'starting' });
  const w = await watch();
  expect(w.health()).toMatchObject({ ok: true, health: 'starting' });
  web.health = 'healthy';
  await waitFor('healthy', () => w.health().health === 'healthy');
  web.health = 'unhealthy';
  web.lastCheckOutput = 'connect() failed (111: Connection refused)\n';
  await waitFor('unhealthy', () => w.health().health === 'unhealthy');
  expect(w.health().ok).toBe(false);
  expect(w.health().detail).toMatch(/unhealthy.*last check said: connect\(\) failed/);
  await sleep(POLL * 4);
  web.health = 'healthy';
  await waitFor('healthy again', () => w.health().ok === true);
  const msgs = logged(/health: /).map((l) => `${l.level} ${l.message}`);
  expect(msgs).toEqual([
    'info web container torplus-web-1 health: starting -> healthy',
    'warn web container torplus-web-1 health: healthy -> unhealthy; last check said: connect() failed (111: Connection refused)',
    'info web container torplus-web-1 health: unhealthy -> healthy',
  ]);
  expect(fake.restarts).toEqual([]);
});

test('a restart of the container is noticed', async () => {
  const web = fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  const w = await watch();
  expect(w.health().restartCount).toBe(0);
  web.restartCount = 1;
  web.startedAt = new Date(Date.parse(web.startedAt) + 1000).toISOString();
  await waitFor('restart seen', () => w.health().restartCount === 1);
  expect(w.health()).toMatchObject({ startedAt: web.startedAt, restartsByBridge: 0 });
  expect(logged(/restarted \(restart count 1, started at /)).toHaveLength(1);
  web.running = false;
  web.status = 'exited';
  web.exitCode = 137;
  await waitFor('stop seen', () => w.health().running === false);
  expect(w.health().ok).toBe(false);
  expect(logged(/stopped \(exited, exit code 137\)/)).toHaveLength(1);
});

test('restarts a container that stays unhealthy, once per backoff period', async () => {
  const web = fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  const w = await watch({ restartUnhealthyAfterMs: 100, restartBackoffMs: 600 });
  const t0 = Date.now();
  web.health = 'unhealthy'; // and stays so, even after a restart
  await waitFor('first restart', () => fake.restarts.length === 1);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  expect(fake.restarts).toEqual([web.id]);
  await waitFor('restart counted', () => w.health().restartsByBridge === 1);
  expect(logged(/has been unhealthy for .*; restarting it/)).toHaveLength(1);
  await sleep(300); // within the backoff: unhealthy, but no second restart
  expect(fake.restarts).toHaveLength(1);
  await waitFor('second restart after the backoff', () => fake.restarts.length === 2, 2000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  expect(fake.unknown).toEqual([]);
});

test('does not restart a container that recovers before the threshold', async () => {
  const web = fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'unhealthy' });
  const w = await watch({ restartUnhealthyAfterMs: 250 });
  await sleep(100);
  web.health = 'healthy';
  await waitFor('healthy', () => w.health().health === 'healthy');
  await sleep(300);
  web.health = 'unhealthy'; // a new spell: the clock starts again
  await sleep(150);
  expect(fake.restarts).toEqual([]);
  await waitFor('restart after a full spell', () => fake.restarts.length === 1);
});

test('Docker going away: health says so, logged once, no crash; watching again when it is back', async () => {
  fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  const w = await watch();
  expect(w.health().watching).toBe(true);
  await fake.close();
  await waitFor('unreachable', () => w.health().state === 'unreachable');
  expect(w.health()).toMatchObject({ ok: true, watching: false });
  expect(w.health().detail).toMatch(new RegExp(`Docker at ${fake.socketPath} does not answer \\(E[A-Z]+\\); retrying every 20 ms`));
  await sleep(POLL * 5);
  expect(logged(/does not answer/)).toHaveLength(1);
  await fake.listen();
  await waitFor('watching again', () => w.health().watching === true);
  expect(w.health()).toMatchObject({ ok: true, health: 'healthy' });
  expect(logged(/^watching web container torplus-web-1/)).toHaveLength(2);
});

test('an error answer from Docker is reported, not thrown', async () => {
  fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  fake.failWith = { status: 403, message: 'denied by the socket proxy' };
  const w = await watch();
  expect(w.health()).toMatchObject({ ok: true, watching: false, state: 'error' });
  expect(w.health().detail).toMatch(/Docker answered .*403.*denied by the socket proxy/);
  fake.failWith = undefined;
  await waitFor('watching', () => w.health().watching === true);
});

test('stop and abort end the polling', async () => {
  fake.add({ name: 'torplus-web-1', labels: webLabels(), health: 'healthy' });
  const ac = new AbortController();
  watcher = new WebContainerWatcher({ socketPath: fake.socketPath, container: 'web', pollMs: POLL, log });
  await watcher.start(ac.signal);
  await waitFor('a few polls', () => fake.requests.length >= 4);
  ac.abort();
  expect(watcher.health().state).toBe('stopped');
  await watcher.stop(); // idempotent: waits for a tick in flight
  const n = fake.requests.length;
  await sleep(POLL * 5);
  expect(fake.requests.length).toBe(n);
  expect(watcher.health().state).toBe('stopped');
});
