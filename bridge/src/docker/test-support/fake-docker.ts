import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** One container of the fake engine; tests change these fields to play the engine's part. */
export interface FakeContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  running: boolean;
  status: string;
  /** State.Health.Status; undefined = no HEALTHCHECK. */
  health?: 'starting' | 'healthy' | 'unhealthy';
  lastCheckOutput?: string;
  restartCount: number;
  startedAt: string;
  exitCode: number;
}

/**
 * A small Docker Engine API on a Unix socket in a temp dir: just what dockerode asks of it for
 * listContainers, inspect and restart. Every request is recorded; unknown ones too (in `unknown`),
 * so a test can tell when dockerode asks for something this fake does not answer.
 */
export class FakeDocker {
  readonly containers: FakeContainer[] = [];
  readonly requests: string[] = [];
  readonly unknown: string[] = [];
  /** Ids of the containers restarted through POST /containers/<id>/restart. */
  readonly restarts: string[] = [];
  /** When set, every request gets this error answer (as a socket proxy that denies would). */
  failWith: { status: number; message: string } | undefined;
  private server: Server | undefined;

  private constructor(readonly dir: string, readonly socketPath: string) {}

  static async start(): Promise<FakeDocker> {
    const dir = await mkdtemp(join(tmpdir(), 'fake-docker-'));
    const fake = new FakeDocker(dir, join(dir, 'docker.sock'));
    await fake.listen();
    return fake;
  }

  add(c: Partial<FakeContainer> & { name: string }): FakeContainer {
    const full: FakeContainer = {
      id: randomBytes(32).toString('hex'),
      labels: {},
      running: true,
      status: 'running',
      restartCount: 0,
      startedAt: new Date().toISOString(),
      exitCode: 0,
      ...c,
    };
    this.containers.push(full);
    return full;
  }

  /** Listens (again) on the same socket path. */
  async listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
  }

  /** Goes away: the socket stops answering (and its file is removed). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async dispose(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://docker');
    const path = url.pathname.replace(/^\/v1\.\d+(?=\/)/, '');
    this.requests.push(`${req.method} ${path}${url.search}`);
    req.resume();
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (this.failWith) return send(this.failWith.status, { message: this.failWith.message });
    let m: RegExpMatchArray | null;
    if (req.method === 'GET' && path === '/containers/json') return send(200, this.list(url.searchParams));
    if (req.method === 'GET' && (m = path.match(/^\/containers\/([^/]+)\/json$/))) {
      const c = this.find(decodeURIComponent(m[1]!));
      return c ? send(200, inspectOf(c)) : send(404, { message: `No such container: ${m[1]}` });
    }
    if (req.method === 'POST' && (m = path.match(/^\/containers\/([^/]+)\/restart$/))) {
      const c = this.find(decodeURIComponent(m[1]!));
      if (!c) return send(404, { message: `No such container: ${m[1]}` });
      this.restarts.push(c.id);
      c.running = true;
      c.status = 'running';
      c.startedAt = new Date(Math.max(Date.now(), Date.parse(c.startedAt) + 1)).toISOString();
      return send(204);
    }
    this.unknown.push(`${req.method} ${req.url}`);
    send(404, { message: `fake docker: no route for ${req.method} ${req.url}` });
  }

  private find(ref: string): FakeContainer | undefined {
    return this.containers.find((c) => c.id === ref || c.name === ref || (ref.length >= 12 && c.id.startsWith(ref)));
  }

  private list(q: URLSearchParams): unknown[] {
    const all = q.get('all') === 'true' || q.get('all') === '1';
    const filters = JSON.parse(q.get('filters') ?? '{}') as { label?: string[] };
    return this.containers
      .filter((c) => all || c.running)
      .filter((c) => (filters.label ?? []).every((l) => {
        const [k, v] = l.split('=', 2) as [string, string | undefined];
        return v === undefined ? k in c.labels : c.labels[k] === v;
      }))
      .map((c) => ({ Id: c.id, Names: [`/${c.name}`], Labels: c.labels, State: c.running ? 'running' : 'exited', Status: c.status }));
  }
}

function inspectOf(c: FakeContainer): unknown {
  const health = c.health && {
    Status: c.health,
    FailingStreak: c.health === 'unhealthy' ? 3 : 0,
    Log: c.lastCheckOutput ? [{ Start: c.startedAt, End: c.startedAt, ExitCode: 1, Output: c.lastCheckOutput }] : [],
  };
  return {
    Id: c.id,
    Name: `/${c.name}`,
    RestartCount: c.restartCount,
    Config: { Labels: c.labels },
    State: {
      Status: c.status,
      Running: c.running,
      ExitCode: c.exitCode,
      StartedAt: c.startedAt,
      ...(health ? { Health: health } : {}),
    },
  };
}
