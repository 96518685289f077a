// A backend bridge (BALANCE_MASTER_ONION) says it is alive: every few seconds it records its own onion and
// what it serves in the instance registry, where the frontend (`torplus-bridge balance`) finds the live
// backends for the master descriptor. A clean stop leaves at once; a killed bridge drops out when its
// heartbeat goes stale. PostgreSQL being away is logged, never fatal: the site keeps being served.
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import type { Instance, InstanceBeat, PgInstanceRegistry } from './instances.js';

/** A backend counts as live this long after its last heartbeat (the frontend's rule too). */
export const LIVE_MS = 30_000;

export interface BackendHeartbeatOptions {
  open: () => Promise<Pick<PgInstanceRegistry, 'beat' | 'leave' | 'close' | 'all'>>;
  /** This bridge's own (backend) onion address; undefined until known. */
  onion: () => string | undefined;
  stats: () => Pick<InstanceBeat, 'visitors' | 'bytesServed'>;
  log: Logger;
  /** Default 10 s; the frontend counts a backend live for 30 s after its last beat. */
  intervalMs?: number;
}

export class BackendHeartbeat implements Service {
  readonly name = 'instances';
  private readonly o: BackendHeartbeatOptions;
  private registry: Awaited<ReturnType<BackendHeartbeatOptions['open']>> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last: { at: number; error?: string } | undefined;
  private beating: Promise<void> = Promise.resolve();
  /** Every backend as the registry listed it at the last heartbeat (for the dashboard and /metrics). */
  private known: Instance[] = [];

  constructor(o: BackendHeartbeatOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    this.registry = await this.o.open();
    const beat = () => {
      this.beating = this.beat();
    };
    beat();
    this.timer = setInterval(beat, this.o.intervalMs ?? 10_000);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const onion = this.o.onion();
    if (!onion || !this.registry) return;
    try {
      await this.registry.beat({ id: onion, onion, ...this.o.stats() });
      this.known = await this.registry.all();
      if (this.last?.error) this.o.log.info('instance registry: heartbeats go through again', { service: this.name });
      this.last = { at: Date.now() };
    } catch (err) {
      if (!this.last?.error) this.o.log.warn(`instance registry: heartbeat failed: ${(err as Error).message}`, { service: this.name });
      this.last = { at: this.last?.at ?? 0, error: (err as Error).message };
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    const onion = this.o.onion();
    if (onion) await this.registry?.leave(onion).catch(() => undefined);
    await this.registry?.close().catch(() => undefined);
    this.registry = undefined;
  }

  /** The bridges behind the master, as of the last heartbeat: which are live, and which is this one. */
  instances(): Array<Instance & { live: boolean; self: boolean }> {
    const now = Date.now();
    const self = this.o.onion();
    return this.known.map((i) => ({ ...i, live: now - i.lastBeat < LIVE_MS, self: i.onion === self }));
  }

  health(): Health {
    if (!this.last) return { ok: false, detail: 'no heartbeat yet' };
    return this.last.error
      ? { ok: false, detail: `heartbeat failing: ${this.last.error}`, lastBeat: this.last.at ? new Date(this.last.at).toISOString() : null }
      : { ok: true, detail: 'this backend is listed for the frontend', lastBeat: new Date(this.last.at).toISOString() };
  }
}
