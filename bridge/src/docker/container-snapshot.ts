import type Docker from 'dockerode';

/** What the watcher keeps of one `docker inspect` of the web container. */
export interface ContainerSnapshot {
  id: string;
  name: string;
  running: boolean;
  /** State.Status: created, running, restarting, exited, ... */
  status: string;
  /** State.Health.Status, or 'none' when the image has no HEALTHCHECK. */
  health: 'starting' | 'healthy' | 'unhealthy' | 'none';
  restartCount: number;
  startedAt: string;
  exitCode: number;
  /** The output of the last failed health check, trimmed, when unhealthy. */
  lastCheckOutput?: string;
}

export function snapshotOf(info: Docker.ContainerInspectInfo): ContainerSnapshot {
  const s = info.State;
  const raw = s.Health?.Status;
  const health = raw === 'starting' || raw === 'healthy' || raw === 'unhealthy' ? raw : 'none';
  const log = s.Health?.Log ?? [];
  const last = log[log.length - 1];
  const out: ContainerSnapshot = {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    running: s.Running,
    status: s.Status,
    health,
    restartCount: info.RestartCount ?? 0,
    startedAt: s.StartedAt,
    exitCode: s.ExitCode,
  };
  if (health === 'unhealthy' && last?.Output) out.lastCheckOutput = last.Output.trim().slice(0, 200);
  return out;
}

/** The human lines worth logging between two snapshots (none when nothing changed). */
export function changesBetween(prev: ContainerSnapshot, next: ContainerSnapshot): { level: 'info' | 'warn'; message: string }[] {
  const out: { level: 'info' | 'warn'; message: string }[] = [];
  const who = `web container ${next.name}`;
  if (prev.id !== next.id) out.push({ level: 'info', message: `${who} was recreated (id ${next.id.slice(0, 12)})` });
  else if (next.restartCount > prev.restartCount || next.startedAt !== prev.startedAt) {
    out.push({ level: 'warn', message: `${who} restarted (restart count ${next.restartCount}, started at ${next.startedAt})` });
  }
  if (prev.running && !next.running) out.push({ level: 'warn', message: `${who} stopped (${next.status}, exit code ${next.exitCode})` });
  if (prev.health !== next.health) {
    const why = next.lastCheckOutput ? `; last check said: ${next.lastCheckOutput}` : '';
    out.push({ level: next.health === 'unhealthy' ? 'warn' : 'info', message: `${who} health: ${prev.health} -> ${next.health}${why}` });
  }
  return out;
}

export function describe(s: ContainerSnapshot): string {
  const health = s.health === 'none' ? 'no healthcheck' : s.health;
  return `web container ${s.name} (${s.id.slice(0, 12)}): ${s.running ? 'running' : s.status}, ${health}, ${s.restartCount} restart(s)`;
}
