import type { MeterState, MeterToPrimary, MeterToWorker } from '../worker-protocol.js';
import type { Visitor } from '../visitor.js';
import type { Account } from './meter.js';
import { visitorOfKey, type VisitorMeterOptions } from './visitor-meter.js';

/** A subject (see worker-protocol.ts) that at least one worker meters. */
interface HostSubject {
  key: string;
  visitorKey: string;
  token: string | undefined;
  visitor: Visitor;
  /** Host headers the workers saw, for the payment URLs (a few at most). */
  hosts: string[];
  /** The workers (cluster ids) that meter it: they get its state. */
  workers: Set<number>;
  /** The account it resolved to last (the index below). */
  accountKey: string | undefined;
  /** What the workers were told last, to push changes only. */
  sent: Sent | undefined;
}

interface Sent {
  mustPay: boolean;
  throttled: boolean;
  near: boolean;
  requestId: string | undefined;
  expiresAt: number | undefined;
  token: string | undefined;
  hosts: number;
}

const MAX_HOSTS = 8;
/**
 * A subject is `near` (see MeterState) when its account has less than this left per worker: more
 * than a worker holds unsent (256 KiB), so the workers are told before the allowance runs out.
 */
const NEAR_BYTES_PER_WORKER = 512 * 1024;
/**
 * …and while it must pay and will be throttled within this long (with no grace period: from the
 * moment it must pay). A worker at full speed reads up to 2 MiB from the upstream before it looks
 * at its IPC channel again (libuv reads a stream up to 32 times per turn), so a pushed "throttled"
 * can come late; a worker that reserves each slice pauses the upstream meanwhile, and the
 * primary's answer already carries the throttle.
 */
const NEAR_MS = 1000;

/**
 * The primary's side of metering across proxy workers. The Meter stays here, the one authority on
 * every visitor's allowance, credit and throttle. The workers (RemoteVisitorMeter) send the bytes
 * they counted in batches and, for a throttled visitor, reserve each slice from the account's one
 * token bucket here, so all workers together keep to the rate; near the end of the allowance or
 * the credit, and just before the throttle, they reserve each slice too (see `near`), so those
 * moments are exact. This pushes each subject's state (must pay, the payment request's headers and
 * 402 body, throttled, near) to the workers that meter it whenever it changes: after counting, and
 * on the Meter's own changes (a payment request made, the throttle set, a payment complete), at once.
 */
export class MeterHost {
  private readonly o: VisitorMeterOptions;
  private readonly subjects = new Map<string, HostSubject>();
  /** Account key → the subjects that resolved to it last. */
  private readonly byAccount = new Map<string, Set<HostSubject>>();
  private readonly workers = new Map<number, (m: MeterToWorker) => void>();
  private readonly unsubscribe: () => void;

  constructor(o: VisitorMeterOptions) {
    this.o = o;
    this.unsubscribe = o.meter.onChange((a, formerKey) => this.accountChanged(a, formerKey));
  }

  /** A worker was forked: `send` reaches it. */
  attach(workerId: number, send: (m: MeterToWorker) => void): void {
    this.workers.set(workerId, send);
  }

  /** A worker exited: its subjects are no longer its. Bytes it had not sent yet are lost (one batch at most). */
  detach(workerId: number): void {
    this.workers.delete(workerId);
    for (const s of this.subjects.values()) {
      if (s.workers.delete(workerId) && s.workers.size === 0) this.forget(s);
    }
  }

  receive(workerId: number, m: MeterToPrimary): void {
    const { meter } = this.o;
    switch (m.t) {
      case 'meter-open': {
        const s = this.subject(m.k, workerId);
        if (!s.hosts.includes(m.host) && s.hosts.length < MAX_HOSTS) s.hosts.push(m.host);
        // The worker waits for this answer: it gets the state even when the others have it already. A
        // token not known yet is looked up first, so the answer is its session's.
        const lookup = meter.prepare(s.token);
        if (lookup) void lookup.then(() => this.refresh(s, this.resolve(s), workerId));
        else this.refresh(s, this.resolve(s), workerId);
        break;
      }
      case 'meter-count': {
        // Also from a worker that has just exited: its last batch still counts.
        const c = m.c;
        for (let i = 0; i + 1 < c.length; i += 2) {
          const s = this.subject(String(c[i]), workerId);
          const a = this.resolve(s);
          meter.record(a, Number(c[i + 1]) || 0);
          if (s.workers.size === 0) this.forget(s);
          else this.refresh(s, a);
        }
        break;
      }
      case 'meter-reserve': {
        const s = this.subject(m.k, workerId);
        const a = this.resolve(s);
        meter.record(a, m.n);
        const wait = a.bucket ? a.bucket.reserve(m.n) : 0;
        this.workers.get(workerId)?.({ t: 'meter-reserved', id: m.id, wait });
        this.refresh(s, a);
        break;
      }
      case 'meter-ensure': {
        const s = this.subject(m.k, workerId);
        const a = this.resolve(s);
        if (meter.mustPay(a) && !meter.request(a)) meter.ensureRequest(a);
        this.refresh(s, a);
        break;
      }
      case 'meter-drop': {
        const s = this.subjects.get(m.k);
        if (s && s.workers.delete(workerId) && s.workers.size === 0) this.forget(s);
        break;
      }
    }
  }

  /** How many subjects the workers meter (for tests and stats). */
  size(): number {
    return this.subjects.size;
  }

  close(): void {
    this.unsubscribe();
    this.subjects.clear();
    this.byAccount.clear();
    this.workers.clear();
  }

  private subject(key: string, workerId: number): HostSubject {
    let s = this.subjects.get(key);
    if (!s) {
      const nl = key.indexOf('\n');
      const visitorKey = nl < 0 ? key : key.slice(0, nl);
      const token = nl < 0 ? undefined : key.slice(nl + 1) || undefined;
      s = { key, visitorKey, token, visitor: visitorOfKey(visitorKey), hosts: [], workers: new Set(), accountKey: undefined, sent: undefined };
      this.subjects.set(key, s);
    }
    if (this.workers.has(workerId)) s.workers.add(workerId);
    return s;
  }

  /** The subject's account now: its token's session, its visitor's account, or what that became. */
  private resolve(s: HostSubject): Account {
    const a = this.o.meter.account(s.visitorKey, s.token);
    if (s.accountKey !== a.key) {
      this.unindex(s);
      s.accountKey = a.key;
      let set = this.byAccount.get(a.key);
      if (!set) this.byAccount.set(a.key, (set = new Set()));
      set.add(s);
    }
    return a;
  }

  private unindex(s: HostSubject): void {
    if (s.accountKey === undefined) return;
    const set = this.byAccount.get(s.accountKey);
    set?.delete(s);
    if (set?.size === 0) this.byAccount.delete(s.accountKey);
  }

  private forget(s: HostSubject): void {
    this.subjects.delete(s.key);
    this.unindex(s);
  }

  private accountChanged(a: Account, formerKey: string | undefined): void {
    const affected = new Set<HostSubject>(this.byAccount.get(a.key));
    if (formerKey !== undefined) for (const s of this.byAccount.get(formerKey) ?? []) affected.add(s);
    for (const s of affected) this.refresh(s, this.resolve(s));
  }

  /** Pushes the subject's state to its workers if it changed (and to `to` in any case). */
  private refresh(s: HostSubject, a: Account, to?: number): void {
    const { meter } = this.o;
    const mustPay = meter.mustPay(a);
    const r = mustPay ? meter.request(a) : undefined;
    const token = r ? a.sessionToken : undefined;
    const throttleIn = meter.throttleIn(a);
    const near = !a.throttled && (mustPay ? throttleIn !== undefined && throttleIn < NEAR_MS : meter.left(a) < NEAR_BYTES_PER_WORKER * Math.max(1, this.workers.size));
    const was = s.sent;
    const changed =
      !was || was.mustPay !== mustPay || was.throttled !== a.throttled || was.near !== near || was.requestId !== r?.id || was.expiresAt !== r?.expiresAt || was.token !== token || was.hosts !== s.hosts.length;
    if (!changed && to === undefined) return;
    s.sent = { mustPay, throttled: a.throttled, near, requestId: r?.id, expiresAt: r?.expiresAt, token, hosts: s.hosts.length };
    const state: MeterState = { mustPay, throttled: a.throttled };
    if (near) state.near = true;
    if (r) {
      try {
        const urls: string[] = [];
        for (const host of s.hosts) urls.push(host, this.o.paymentUrl(s.visitor, host || undefined, r.id));
        state.request = { id: r.id, expiresAt: r.expiresAt, body: JSON.stringify(this.o.requestJson(r)), urls };
        if (token) state.token = token;
      } catch {
        // The payments service is stopping: the workers see a request still pending.
        s.sent = undefined;
      }
    }
    const m: MeterToWorker = { t: 'meter-state', k: s.key, s: state };
    if (changed) for (const w of s.workers) this.workers.get(w)?.(m);
    else this.workers.get(to!)?.(m);
  }
}
