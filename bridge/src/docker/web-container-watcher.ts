import { stat } from 'node:fs/promises';
import Docker from 'dockerode';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { changesBetween, describe, snapshotOf, type ContainerSnapshot } from './container-snapshot.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface WebContainerWatcherOptions {
  /** The Docker Engine's Unix socket; default /var/run/docker.sock. Absent file = not watching (said once). */
  socketPath?: string;
  /** A compose service name (found by label com.docker.compose.service), else a container name or id. */
  container: string;
  /** The compose project (label com.docker.compose.project), when known: tells apart two stacks on one host. */
  project?: string;
  /** How often to inspect the container; default 10 s. */
  pollMs?: number;
  /** Restart the container once it has stayed unhealthy this long; undefined = never restart it. */
  restartUnhealthyAfterMs?: number;
  /** At most one restart per this period (never a loop); default 10 min, and never less than restartUnhealthyAfterMs. */
  restartBackoffMs?: number;
  /** Timeout of one Docker API request; default 15 s. Ignored when `docker` is given. */
  requestTimeoutMs?: number;
  log: Logger;
  /** A ready client (tests); when given, socketPath is not checked for existence. */
  docker?: Docker;
}

type State = 'idle' | 'disabled' | 'watching' | 'unreachable' | 'not-found' | 'error' | 'stopped';

/**
 * Watches the web container through the Docker socket: its health and its restarts, logged when they
 * change and reported in /healthz; optionally restarts it when it stays unhealthy. Never throws: without
 * Docker the bridge works the same, this only says that it is not watching.
 */
export class WebContainerWatcher implements Service {
  readonly name = 'web-container';
  private readonly socketPath: string;
  private readonly pollMs: number;
  private readonly backoffMs: number;
  private readonly log: Logger;
  private docker: Docker | undefined;
  private state: State = 'idle';
  private detail = 'not started';
  private lastProblem: string | undefined;
  private snap: ContainerSnapshot | undefined;
  private id: string | undefined;
  private unhealthySince: number | undefined;
  private lastRestartAt: number | undefined;
  private restartsByBridge = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: WebContainerWatcherOptions) {
    this.socketPath = opts.socketPath ?? DEFAULT_DOCKER_SOCKET;
    this.pollMs = opts.pollMs ?? 10_000;
    this.backoffMs = Math.max(opts.restartBackoffMs ?? 600_000, opts.restartUnhealthyAfterMs ?? 0);
    this.log = opts.log.child({ service: this.name });
    this.docker = opts.docker;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'idle' || this.stopped) return;
    if (signal?.aborted) return this.stop();
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    if (!this.docker) {
      const exists = await stat(this.socketPath).then(() => true, () => false);
      if (this.stopped) return;
      if (!exists) {
        this.state = 'disabled';
        this.detail = `not watching the web container: no Docker socket at ${this.socketPath} (optional; see README)`;
        this.log.info(this.detail);
        return;
      }
      this.docker = new Docker({ socketPath: this.socketPath, timeout: this.opts.requestTimeoutMs ?? 15_000 });
    }
    this.log.warn(`watching the web container "${this.opts.container}" through ${this.socketPath}: this process can control the Docker host`);
    await this.runTick();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.state !== 'disabled') {
      this.state = 'stopped';
      this.detail = 'stopped';
    }
    await this.inFlight;
  }

  health(): Health {
    const s = this.snap;
    if (this.state !== 'watching' || !s) return { ok: true, detail: this.detail, watching: false, state: this.state };
    const ok = s.running && s.health !== 'unhealthy';
    return {
      ok,
      detail: this.detail,
      watching: true,
      state: this.state,
      container: s.name,
      id: s.id.slice(0, 12),
      running: s.running,
      health: s.health,
      restartCount: s.restartCount,
      startedAt: s.startedAt,
      restartsByBridge: this.restartsByBridge,
      ...(this.unhealthySince !== undefined ? { unhealthySince: new Date(this.unhealthySince).toISOString() } : {}),
    };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      void this.runTick().finally(() => this.schedule());
    }, this.pollMs);
  }

  private runTick(): Promise<void> {
    this.inFlight = this.tick().catch((err: unknown) => this.problem('error', `the web container watcher failed: ${messageOf(err)}`));
    return this.inFlight;
  }

  private async tick(): Promise<void> {
    const docker = this.docker!;
    let info: Docker.ContainerInspectInfo | undefined;
    try {
      info = await this.inspectWeb(docker);
    } catch (err) {
      if (this.stopped) return;
      return this.problem(...this.classify(err));
    }
    if (this.stopped) return;
    if (!info) {
      this.id = undefined;
      const project = this.opts.project ? ` in compose project "${this.opts.project}"` : '';
      return this.problem('not-found', `not watching the web container: no container for compose service "${this.opts.container}"${project}, nor one named so, on the Docker host at ${this.socketPath}; check the service name (is the stack up?)`);
    }
    this.observe(snapshotOf(info));
    await this.maybeRestart();
  }

  /** The web container's state; looks for it again when the known one is gone (compose recreated it). */
  private async inspectWeb(docker: Docker): Promise<Docker.ContainerInspectInfo | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.id ??= await this.resolve(docker);
      if (!this.id) return undefined;
      try {
        return await docker.getContainer(this.id).inspect();
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        this.id = undefined;
      }
    }
    return undefined;
  }

  /** The container's id: by compose labels first, then as a plain name or id. */
  private async resolve(docker: Docker): Promise<string | undefined> {
    const label = [`com.docker.compose.service=${this.opts.container}`];
    if (this.opts.project) label.push(`com.docker.compose.project=${this.opts.project}`);
    const list = await docker.listContainers({ all: true, filters: { label } });
    const pick = list.find((c) => c.State === 'running') ?? list[0];
    if (pick) return pick.Id;
    try {
      return (await docker.getContainer(this.opts.container).inspect()).Id;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private observe(next: ContainerSnapshot): void {
    const prev = this.snap;
    if (this.lastProblem !== undefined || !prev) this.log.info(`watching ${describe(next)}`);
    this.lastProblem = undefined;
    if (prev) for (const c of changesBetween(prev, next)) this.log[c.level](c.message, { health: next.health, restartCount: next.restartCount });
    if (next.health !== 'unhealthy' || (prev && (prev.id !== next.id || prev.startedAt !== next.startedAt))) this.unhealthySince = undefined;
    if (next.health === 'unhealthy') this.unhealthySince ??= Date.now();
    this.snap = next;
    this.state = 'watching';
    this.detail = describe(next) + (next.lastCheckOutput ? `; last check said: ${next.lastCheckOutput}` : '');
  }

  private async maybeRestart(): Promise<void> {
    const after = this.opts.restartUnhealthyAfterMs;
    const s = this.snap;
    if (after === undefined || !s || this.unhealthySince === undefined) return;
    const now = Date.now();
    if (now - this.unhealthySince < after) return;
    if (this.lastRestartAt !== undefined && now - this.lastRestartAt < this.backoffMs) return;
    this.lastRestartAt = now;
    this.log.warn(`web container ${s.name} has been unhealthy for ${Math.round((now - this.unhealthySince) / 1000)} s; restarting it (no other restart for ${Math.round(this.backoffMs / 1000)} s)`);
    try {
      await this.docker!.getContainer(s.id).restart();
      this.restartsByBridge++;
      this.unhealthySince = undefined;
    } catch (err) {
      this.log.error(`could not restart web container ${s.name}: ${messageOf(err)}; restart it by hand (docker compose restart ${this.opts.container})`);
    }
  }

  /** A problem is logged when it starts or changes, not at every poll. */
  private problem(state: State, detail: string): void {
    if (this.stopped) return;
    this.state = state;
    this.detail = detail;
    this.snap = undefined;
    if (this.lastProblem === detail) return;
    this.lastProblem = detail;
    this.log.warn(detail);
  }

  private classify(err: unknown): [State, string] {
    const code = (err as { code?: unknown } | undefined)?.code;
    const retry = `retrying every ${this.pollMs < 1000 ? `${this.pollMs} ms` : `${Math.round(this.pollMs / 100) / 10} s`}`;
    if (code === 'EACCES') return ['unreachable', `not watching the web container: no permission on ${this.socketPath}; give the bridge's user the socket's group (compose: group_add), or unmount the socket; ${retry}`];
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return ['unreachable', `not watching the web container: Docker at ${this.socketPath} does not answer (${code}); ${retry}`];
    if (/timeout/i.test(messageOf(err))) return ['unreachable', `not watching the web container: Docker at ${this.socketPath} timed out; ${retry}`];
    return ['error', `not watching the web container: Docker answered ${messageOf(err)}; ${retry}`];
  }
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 200);
}
