// A proxy worker's meter (PROXY_WORKERS > 1 with payments): the same per-request interface as
// createVisitorMeter, but the Meter is in the primary process (MeterHost). Runs straight from the
// TypeScript source under jest (type stripping): erasable TypeScript only.
import type { IncomingMessage } from 'node:http';
import type { Visitor } from '../visitor.js';
import type { MeterState, MeterToPrimary, MeterToWorker } from '../worker-protocol.js';
import type { RequestMeter } from './pacer.js';
import type { Paywall } from '../paywall/paywall.js';
import { isTls, PAYMENT_PENDING, paymentHeaders, paymentRequiredAnswer, sessionTokenOf, visitorKeyOf, wants402 } from './visitor-meter.js';

export interface RemoteVisitorMeterOptions {
  /** Sends a message to the primary; `done` once it is written. */
  send: (m: MeterToPrimary, done?: () => void) => void;
  /** Bytes counted at full speed reach the primary at least this often. Default 25 ms. */
  flushMs?: number;
  /**
   * …or as soon as one subject has this many bytes unsent. Default 256 KiB: at ≈ 1 GB/s through two
   * workers on loopback the primary then spends ≈ 7–10% of a core on the batches (≈ 15–20% at
   * 64 KiB); an onion visitor (a few MB/s through tor) is batched by time anyway.
   */
  flushBytes?: number;
  /** A subject unused this long is forgotten (here and, once no worker has it, in the primary). Default 60 s. */
  idleMs?: number;
  /** How long a first request waits for the primary's answer before it goes on. Default 2 s. */
  readyTimeoutMs?: number;
  /** PAYWALL=page: throttled visitors' navigations get the pay page, rendered here from the request's JSON. */
  paywall?: Paywall;
}

/** One subject (visitor key and session token, see worker-protocol.ts): a mirror of its account's state. */
interface Subject {
  key: string;
  /** Host headers reported to the primary: it sends a payment URL for each. */
  hosts: string[];
  /** Still in the table (a forgotten subject is opened again on its next use). */
  attached: boolean;
  /** The primary has answered at least once. */
  known: boolean;
  state: MeterState;
  /** Bytes counted, not sent to the primary yet. */
  unsent: number;
  lastUsed: number;
  /** Held streams, woken when the throttle lifts. */
  wakers: Set<() => void>;
  /** Requests waiting for the first state. */
  waiting: (() => void)[];
  readyTimer: NodeJS.Timeout | undefined;
  ensuredAt: number;
}

const UNKNOWN: MeterState = { mustPay: false, throttled: false };
const MAX_HOSTS = 8;

/**
 * Meters requests in a proxy worker against the primary's Meter. Per subject it mirrors what the
 * hot path needs (throttled, must pay, the payment headers and 402 body, ready-made by the
 * primary), so a request at full speed costs no round trip: its bytes are counted here and sent in
 * batches (every `flushMs`, or at `flushBytes` for one subject). Only a subject's first request in
 * a worker waits, for the primary's answer (one IPC round trip).
 *
 * Throttled, each slice (16 KiB) is reserved from the account's one token bucket in the primary, so
 * a visitor's streams keep to the rate together, whichever workers carry them; one round trip per
 * slice, which at throttled rates costs nothing. The primary pushes every change (payment request
 * made, throttled, payment complete), and held streams are released at once when the throttle lifts.
 *
 * Accuracy: the primary sees a worker's batched bytes up to one batch late (25 ms or 256 KiB by
 * default). So that this does not let a visitor run past its allowance (at loopback speed a few
 * milliseconds are hundreds of KiB), the primary marks a subject `near` once its account has less
 * than 512 KiB per worker left of its free allowance or paid credit: from then on every slice is
 * reserved from the primary as if throttled (answered at once while it is not), so the moment it
 * must pay, and the throttle after a zero grace period, are as exact as in one process: a slice or
 * two. What a far-from-limit visitor's batch may miss is only ever billed late, never lost, except
 * the unsent batch (≤ 25 ms or 256 KiB) of a worker that is killed (SIGKILL) or crashes; a worker
 * that stops sends its last batch before it exits.
 */
export class RemoteVisitorMeter {
  private readonly o: RemoteVisitorMeterOptions;
  private readonly subjects = new Map<string, Subject>();
  private readonly dirty = new Set<Subject>();
  private readonly reserves = new Map<number, (waitMs: number) => void>();
  private seq = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly flushMs: number;
  private readonly flushBytes: number;
  private readonly idleMs: number;

  constructor(o: RemoteVisitorMeterOptions) {
    this.o = o;
    this.flushMs = o.flushMs ?? 25;
    this.flushBytes = o.flushBytes ?? 256 * 1024;
    this.idleMs = o.idleMs ?? 60_000;
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(1000, this.idleMs / 2));
    this.sweepTimer.unref();
  }

  /** The meter for createProxyServers: `(req, visitor) => RequestMeter`. */
  readonly meter = (req: IncomingMessage, visitor: Visitor): RequestMeter => {
    const token = sessionTokenOf(req);
    const visitorKey = visitorKeyOf(req, visitor);
    const key = token ? `${visitorKey}\n${token}` : visitorKey;
    const host = req.headers.host ?? '';
    return new RemoteRequest(this, this.subject(key, host), host, req);
  };

  /** A message from the primary. */
  receive(m: MeterToWorker): void {
    if (m.t === 'meter-reserved') {
      const granted = this.reserves.get(m.id);
      this.reserves.delete(m.id);
      granted?.(m.wait);
      return;
    }
    const s = this.subjects.get(m.k);
    if (!s) return;
    const lifted = s.state.throttled && !m.s.throttled;
    s.state = m.s;
    if (!s.known) this.ready(s);
    if (lifted) for (const wake of [...s.wakers]) wake();
  }

  /** Sends the bytes counted so far; `done` once they are written (or at once when there are none). */
  flush(done?: () => void): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.dirty.size === 0) {
      done?.();
      return;
    }
    const c: (string | number)[] = [];
    for (const s of this.dirty) {
      c.push(s.key, s.unsent);
      s.unsent = 0;
    }
    this.dirty.clear();
    this.o.send({ t: 'meter-count', c }, done);
  }

  /** Flushes and stops the timers. */
  close(done?: () => void): void {
    clearInterval(this.sweepTimer);
    for (const s of this.subjects.values()) clearTimeout(s.readyTimer);
    this.flush(done);
  }

  /** Subjects metered here (tests). */
  size(): number {
    return this.subjects.size;
  }

  // --- for RemoteRequest --------------------------------------------------------------------------

  subject(key: string, host: string): Subject {
    let s = this.subjects.get(key);
    if (!s) {
      s = {
        key, hosts: [host], attached: true, known: false, state: UNKNOWN, unsent: 0, lastUsed: Date.now(),
        wakers: new Set(), waiting: [], readyTimer: undefined, ensuredAt: 0,
      };
      this.subjects.set(key, s);
      this.o.send({ t: 'meter-open', k: key, host });
      return s;
    }
    if (!s.hosts.includes(host) && s.hosts.length < MAX_HOSTS) {
      s.hosts.push(host);
      this.o.send({ t: 'meter-open', k: key, host });
    }
    s.lastUsed = Date.now();
    return s;
  }

  pending(s: Subject, ready: () => void): boolean {
    if (s.known) return false;
    s.waiting.push(ready);
    // The primary is slow to answer: go on with what we know (nothing: full speed, no headers).
    s.readyTimer ??= setTimeout(() => this.ready(s), this.o.readyTimeoutMs ?? 2000);
    return true;
  }

  private ready(s: Subject): void {
    s.known = true;
    clearTimeout(s.readyTimer);
    s.readyTimer = undefined;
    const waiting = s.waiting;
    s.waiting = [];
    for (const go of waiting) go();
  }

  headers(s: Subject, host: string, secure: boolean): string[] | undefined {
    const st = s.state;
    if (!st.mustPay) return undefined;
    const r = st.request;
    if (!r || r.expiresAt <= Date.now()) {
      this.ensure(s);
      return undefined;
    }
    const urls = r.urls;
    let url = urls[1];
    for (let i = 0; i < urls.length; i += 2) if (urls[i] === host) url = urls[i + 1];
    return url === undefined ? undefined : paymentHeaders(url, st.token, secure);
  }

  paymentRequired(s: Subject, req: IncomingMessage, host: string): { headers: Record<string, string>; body: string } | undefined {
    const st = s.state;
    if (wants402(req)) {
      if (!st.mustPay) return undefined;
      const r = st.request;
      if (!r || r.expiresAt <= Date.now()) {
        this.ensure(s);
        return PAYMENT_PENDING;
      }
      return paymentRequiredAnswer(this.headers(s, host, isTls(req)) ?? [], r.body);
    }
    // The grace period comes first: only a throttled visitor's navigation gets the pay page.
    const paywall = this.o.paywall;
    if (!st.throttled || !paywall?.wants(req)) return undefined;
    const r = st.request;
    if (!r || r.expiresAt <= Date.now()) {
      this.ensure(s);
      return paywall.preparing(req, []);
    }
    return paywall.page(req, r.body, this.headers(s, host, isTls(req)) ?? []);
  }

  /** Asks the primary for a payment request (it makes one at most at a time; this asks at most once a second). */
  private ensure(s: Subject): void {
    const now = Date.now();
    if (now - s.ensuredAt < 1000) return;
    s.ensuredAt = now;
    this.o.send({ t: 'meter-ensure', k: s.key });
  }

  count(s: Subject, n: number): void {
    if (n <= 0) return;
    s.lastUsed = Date.now();
    s.unsent += n;
    this.dirty.add(s);
    if (s.unsent >= this.flushBytes) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  reserve(s: Subject, n: number): Promise<number> {
    s.lastUsed = Date.now();
    const id = ++this.seq;
    return new Promise<number>((granted) => {
      this.reserves.set(id, granted);
      this.o.send({ t: 'meter-reserve', k: s.key, n, id });
    });
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const s of this.subjects.values()) {
      if (s.lastUsed > cutoff || s.wakers.size > 0 || s.unsent > 0 || s.waiting.length > 0) continue;
      this.subjects.delete(s.key);
      s.attached = false;
      this.o.send({ t: 'meter-drop', k: s.key });
    }
  }
}

/** One request's RequestMeter: its subject, and the Host header it came with. */
class RemoteRequest implements RequestMeter {
  private readonly owner: RemoteVisitorMeter;
  private s: Subject;
  private readonly host: string;
  private readonly req: IncomingMessage;

  constructor(owner: RemoteVisitorMeter, s: Subject, host: string, req: IncomingMessage) {
    this.owner = owner;
    this.s = s;
    this.host = host;
    this.req = req;
  }

  /** The subject, opened again if it was forgotten while this request was quiet. */
  private subject(): Subject {
    const s = this.s;
    return s.attached ? s : (this.s = this.owner.subject(s.key, this.host));
  }

  pending(ready: () => void): boolean {
    return this.owner.pending(this.subject(), ready);
  }

  headers(): string[] | undefined {
    return this.owner.headers(this.subject(), this.host, isTls(this.req));
  }

  paymentRequired(): { headers: Record<string, string>; body: string } | undefined {
    return this.owner.paymentRequired(this.subject(), this.req, this.host);
  }

  throttled(): boolean {
    const st = this.subject().state;
    return st.throttled || st.near === true;
  }

  count(bytes: number): void {
    this.owner.count(this.subject(), bytes);
  }

  reserve(bytes: number): Promise<number> {
    return this.owner.reserve(this.subject(), bytes);
  }

  onRelease(wake: () => void): () => void {
    const s = this.subject();
    s.wakers.add(wake);
    return () => void s.wakers.delete(wake);
  }
}
