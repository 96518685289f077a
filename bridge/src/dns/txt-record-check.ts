// TxtRecordCheck: does `torplus.<DOMAIN>` carry `torplus=<our onion>`, so that visitors who give the domain
// find this bridge? Checked soon after the onion is published (published(onion), called by the supervisor),
// then every `intervalMs`, or every `retryMs` while the answer is not `found`. Health always names the exact
// record to publish. A missing or wrong record does not stop the bridge: the onion still works by address.
import type { Health, Service } from '../service.js';
import { parseTorplusTxt, torplusName, torplusRecord } from './torplus-txt.js';
import { queryTxt } from './txt-query.js';

export type TxtCheckState = 'pending' | 'found' | 'missing' | 'wrong' | 'error';

export interface TxtRecordCheckOptions {
  domain: string;
  /** DNS_SERVERS (`host:port`); undefined or empty: the system's resolvers. */
  servers?: string[];
  /** Between checks once found. Default 1 h. */
  intervalMs?: number;
  /** Between checks while not found (missing, wrong, error). Default 60 s. */
  retryMs?: number;
  /** After published(), before the first check. Default 0. */
  firstDelayMs?: number;
  /** Per DNS server. Default 2000 ms. */
  timeoutMs?: number;
  /** Told about each change of state. */
  onChange?: (health: TxtCheckHealth) => void;
}

export interface TxtCheckHealth extends Health {
  state: TxtCheckState;
  /** `torplus.<domain> TXT "torplus=<onion>"`, once the onion is known. */
  record: string | undefined;
  /** The onions the record named at the last check. */
  seen: string[];
  checkedAt: string | undefined;
}

export class TxtRecordCheck implements Service {
  readonly name = 'dns';
  private readonly o: TxtRecordCheckOptions;
  private onion: string | undefined;
  private state: TxtCheckState = 'pending';
  private detail = 'waiting for the onion to be published';
  private seen: string[] = [];
  private checkedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(opts: TxtRecordCheckOptions) {
    this.o = opts;
  }

  async start(signal?: AbortSignal): Promise<void> {
    this.abort = new AbortController();
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    if (this.onion) this.schedule(this.o.firstDelayMs ?? 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort(new Error('stopped'));
    this.abort = undefined;
    await this.running?.catch(() => undefined);
  }

  /** The onion is published (or changed): check soon. */
  published(onion: string): void {
    this.onion = onion.toLowerCase().replace(/\.onion$/, '');
    if (this.abort) this.schedule(this.o.firstDelayMs ?? 0);
  }

  /** Checks now (also what the timer runs); resolves with the new health. */
  async check(): Promise<TxtCheckHealth> {
    if (!this.onion) return this.health();
    const onion = this.onion;
    const signal = this.abort?.signal;
    const name = torplusName(this.o.domain);
    let next: { state: TxtCheckState; detail: string; seen: string[] };
    try {
      const answer = await queryTxt(name, {
        ...(this.o.servers ? { servers: this.o.servers } : {}),
        timeoutMs: this.o.timeoutMs ?? 2000,
        ...(signal ? { signal } : {}),
      });
      next = judge(name, onion, answer.kind === 'records' ? answer.records : [], answer.kind);
    } catch (err) {
      if (signal?.aborted) return this.health();
      next = { state: 'error', detail: `cannot check ${name} TXT: ${(err as Error).message}`, seen: [] };
    }
    if (onion !== this.onion) return this.health(); // published() again meanwhile: its own check follows.
    const changed = next.state !== this.state || next.detail !== this.detail;
    this.state = next.state;
    this.detail = next.detail;
    this.seen = next.seen;
    this.checkedAt = new Date();
    if (changed) this.o.onChange?.(this.health());
    return this.health();
  }

  health(): TxtCheckHealth {
    const record = this.onion ? torplusRecord(this.o.domain, this.onion) : undefined;
    const advice = record && this.state !== 'found' ? `; publish ${record}` : '';
    return {
      ok: this.state === 'found' || this.state === 'pending',
      detail: `${this.detail}${advice}`,
      state: this.state,
      record,
      seen: this.seen,
      checkedAt: this.checkedAt?.toISOString(),
    };
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const run = this.check().then(
        () => undefined,
        () => undefined,
      );
      this.running = run;
      void run.then(() => {
        if (this.running === run) this.running = undefined;
        if (this.abort && !this.timer) this.schedule(this.state === 'found' ? (this.o.intervalMs ?? 3_600_000) : (this.o.retryMs ?? 60_000));
      });
    }, ms);
    this.timer.unref();
  }
}

function judge(name: string, onion: string, records: string[][], kind: string): { state: TxtCheckState; detail: string; seen: string[] } {
  const parsed = parseTorplusTxt(records);
  const seen = parsed.onions;
  if (parsed.malformed.length > 0) {
    return { state: 'wrong', detail: `${name} has a malformed torplus= record: ${parsed.malformed[0]!.reason}`, seen };
  }
  const others = seen.filter((o) => o !== onion);
  if (others.length > 0) return { state: 'wrong', detail: `${name} names another onion (${others.join(', ')})`, seen };
  if (seen.length === 0) {
    const why = kind === 'nxdomain' ? 'does not exist (NXDOMAIN)' : kind === 'nodata' ? 'has no TXT record' : 'has no torplus= TXT record';
    return { state: 'missing', detail: `${name} ${why}`, seen };
  }
  return { state: 'found', detail: `${name} names this onion`, seen };
}
