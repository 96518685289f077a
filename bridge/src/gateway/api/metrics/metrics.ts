import { isIP, type Socket } from 'node:net';
import { Router, type NextFunction, type Request, type Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Secret } from '../../../config/secret.js';
import { visitorOf } from '../../visitor.js';
import { requireAdmin } from '../admin-token.js';

/**
 * What the metrics read, at scrape time. Plain getters, implemented by the supervisor: each returns
 * the current value (gauges) or the running total since the component started (counters). A getter
 * that returns `undefined` (or throws) means "not known now": its series are left out of the scrape
 * rather than shown as 0.
 */
export interface MetricsSource {
  /** Bytes served to visitors since start, free and paid. Running totals. */
  bytes(): { free: number; paid: number } | undefined;
  /** Visitors connected now, and how many of them are being throttled now. */
  visitors(): { now: number; throttled: number } | undefined;
  /** Payment requests issued and payments completed since start (totals); stroops earned (total). */
  payments(): { requested: number; completed: number; earnedStroops: bigint } | undefined;
  /** tor: bootstrapped yet, bootstrap progress in percent (0–100, tor's PROGRESS=), restarts since start, onion descriptor published. */
  tor(): { bootstrapped: boolean; progress: number; restarts: number; published: boolean } | undefined;
  /** The IPFS node's totals since start; undefined when the bridge runs without IPFS. */
  ipfs(): { blocksServed: number; blocksFilled: number; filledBytes: number } | undefined;
  /** The HTTPS certificate; undefined without HTTPS, daysLeft null when not known yet. */
  certificate(): { daysLeft: number | null } | undefined;
  /** The bridges behind one master onion (BALANCE_MASTER_ONION); undefined for a bridge on its own. */
  instances?(): Array<{ onion: string; live: boolean; visitors: number; bytesServed: number }> | undefined;
}

export interface MetricsRouterOptions {
  /**
   * Serve /metrics without the token to a direct connection from a loopback address (127.0.0.0/8,
   * ::1, ::ffff:127.x). Requests that came over the onion never count as loopback, although tor
   * connects from 127.0.0.1: see `isLoopbackExempt`. Off by default. Do not turn it on when
   * something on this host (a reverse proxy, a port forward) relays outside traffic to API_PORT:
   * its requests come from loopback too.
   */
  allowLoopbackWithoutToken?: boolean;
}

export interface BridgeMetricsOptions {
  /** Also register the process metrics (CPU, memory, event loop, GC; `torplus_process_…`, `torplus_nodejs_…`) on this registry. */
  processMetrics?: boolean;
}

export interface BridgeMetrics {
  /** This bridge's own registry; nothing is registered on prom-client's global one. */
  readonly registry: Registry;
  /** Records how long one payment verification took, in seconds. Non-finite or negative values are dropped. */
  observeVerification(seconds: number): void;
  /** `GET /metrics`; mount it at the API's root. */
  router(token: Secret, opts?: MetricsRouterOptions): Router;
}

/** Payment verification latency buckets, 1 ms to 10 s. */
export const VERIFICATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const STROOPS_PER_XLM = 10_000_000;

/**
 * Turns a source's running total into a Prometheus counter value that never goes down while this
 * registry lives.
 *
 * Why not a Gauge: these are totals, and Prometheus' rate()/increase() need TYPE counter to treat
 * a drop as a reset. Why not expose the source's total as is: prom-client's Counter has no `set`,
 * and a component the supervisor restarts (tor, the IPFS node) may start its own total again from
 * zero while the bridge process — and so this counter — lives on. So the counter is the sum of
 * what the source counted: each scrape adds the growth since the last one; when the source's total
 * is below the last one seen, the source started over and all of its new total is growth. The
 * exposed counter then resets only when the bridge process does, which is what Prometheus expects.
 */
class MonotonicTotal {
  private last: bigint | undefined;
  private sum = 0n;

  update(total: number | bigint): bigint {
    const t = typeof total === 'bigint' ? total : Number.isFinite(total) ? BigInt(Math.floor(total)) : undefined;
    if (t === undefined || t < 0n) return this.sum; // nonsense from the source: keep what we have
    if (this.last === undefined || t < this.last) this.sum += t;
    else this.sum += t - this.last;
    this.last = t;
    return this.sum;
  }

  value(): bigint {
    return this.sum;
  }
}

/** Calls a getter; a throw counts as "not known now". A broken getter must not break the scrape. */
function read<T>(get: () => T | undefined): T | undefined {
  try {
    return get();
  } catch {
    return undefined;
  }
}

/**
 * The bridge's Prometheus metrics, on a registry of its own (two bridges in one process, or a test
 * next to a bridge, never share series). Values are read from `source` when scraped.
 */
export function createBridgeMetrics(source: MetricsSource, options: BridgeMetricsOptions = {}): BridgeMetrics {
  const registry = new Registry();
  const registers = [registry];

  // --- visitors' traffic -------------------------------------------------------------------------
  const bytesFree = new MonotonicTotal();
  const bytesPaid = new MonotonicTotal();
  new Counter({
    name: 'torplus_served_bytes_total',
    help: 'Bytes of responses served to visitors, by tier: "free" within the free allowance, "paid" against a payment.',
    labelNames: ['tier'] as const,
    registers,
    collect() {
      const b = read(() => source.bytes());
      if (b) {
        bytesFree.update(b.free);
        bytesPaid.update(b.paid);
      }
      this.reset();
      this.inc({ tier: 'free' }, Number(bytesFree.value()));
      this.inc({ tier: 'paid' }, Number(bytesPaid.value()));
    },
  });

  const visitors = (name: string, help: string, pick: (v: { now: number; throttled: number }) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const v = read(() => source.visitors());
        if (v) this.set(pick(v));
        else this.remove();
      },
    });
  visitors('torplus_visitors', 'Visitors connected now (one per Tor circuit, or per direct client).', (v) => v.now);
  visitors('torplus_visitors_throttled', 'Visitors connected now whose traffic is being throttled (out of free allowance, not paid).', (v) => v.throttled);

  // --- payments ----------------------------------------------------------------------------------
  const requested = new MonotonicTotal();
  const completed = new MonotonicTotal();
  const earned = new MonotonicTotal();
  const readPayments = () => {
    const p = read(() => source.payments());
    if (p) {
      requested.update(p.requested);
      completed.update(p.completed);
      earned.update(p.earnedStroops);
    }
  };
  // Each of the three counters' collect reads the source (a cheap getter), so none depends on the
  // order prom-client collects in; updating a MonotonicTotal twice with one total adds nothing.
  const paymentCounter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        readPayments();
        this.reset();
        this.inc(value());
      },
    });
  paymentCounter('torplus_payment_requests_total', 'Payment requests issued to visitors.', () => Number(requested.value()));
  paymentCounter('torplus_payments_completed_total', 'Payments received and verified on the Stellar ledger.', () => Number(completed.value()));
  paymentCounter('torplus_payments_earned_xlm_total', 'XLM earned from verified payments (1 XLM = 10^7 stroops).', () => Number(earned.value()) / STROOPS_PER_XLM);

  const verification = new Histogram({
    name: 'torplus_payment_verification_seconds',
    help: 'Time taken to verify one submitted payment (decode, check, submit and confirm on the ledger), in seconds.',
    buckets: VERIFICATION_BUCKETS_SECONDS,
    registers,
  });

  // --- tor ---------------------------------------------------------------------------------------
  const torGauge = (name: string, help: string, pick: (t: NonNullable<ReturnType<MetricsSource['tor']>>) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const t = read(() => source.tor());
        if (t) this.set(pick(t));
        else this.remove();
      },
    });
  torGauge('torplus_tor_bootstrapped', '1 when tor has finished bootstrapping (100%), else 0.', (t) => (t.bootstrapped ? 1 : 0));
  torGauge('torplus_tor_bootstrap_ratio', "tor's bootstrap progress, 0 to 1.", (t) => Math.min(1, Math.max(0, t.progress / 100)));
  torGauge('torplus_onion_published', "1 when the onion service's descriptor has been published, else 0.", (t) => (t.published ? 1 : 0));
  const torRestarts = new MonotonicTotal();
  new Counter({
    name: 'torplus_tor_restarts_total',
    help: 'Times the bridge restarted its tor process.',
    registers,
    collect() {
      const t = read(() => source.tor());
      if (t) torRestarts.update(t.restarts);
      this.reset();
      this.inc(Number(torRestarts.value()));
    },
  });

  // --- IPFS (left out of the scrape until the source has reported once) ------------------------------------
  const ipfsCounter = (name: string, help: string, pick: (i: NonNullable<ReturnType<MetricsSource['ipfs']>>) => number) => {
    const total = new MonotonicTotal();
    let seen = false;
    return new Counter({
      name,
      help,
      registers,
      collect() {
        const i = read(() => source.ipfs());
        if (i) {
          total.update(pick(i));
          seen = true;
        }
        this.reset();
        if (seen) this.inc(Number(total.value()));
        else this.remove();
      },
    });
  };
  ipfsCounter('torplus_ipfs_blocks_served_total', 'IPFS blocks sent to peers.', (i) => i.blocksServed);
  ipfsCounter('torplus_ipfs_blocks_filled_total', 'IPFS blocks fetched from peers into the local blockstore.', (i) => i.blocksFilled);
  ipfsCounter('torplus_ipfs_filled_bytes_total', 'Bytes of IPFS blocks fetched from peers into the local blockstore.', (i) => i.filledBytes);

  // --- HTTPS certificate -------------------------------------------------------------------------
  new Gauge({
    name: 'torplus_tls_certificate_remaining_days',
    help: 'Days until the HTTPS certificate expires (negative once expired); absent without HTTPS or before the certificate is known.',
    registers,
    collect() {
      const c = read(() => source.certificate());
      if (c && c.daysLeft !== null && Number.isFinite(c.daysLeft)) this.set(c.daysLeft);
      else this.remove();
    },
  });

  // --- the bridges behind one master onion -----------------------------------------------------------
  const instanceGauge = (name: string, help: string, pick: (i: NonNullable<ReturnType<NonNullable<MetricsSource['instances']>>>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['onion'],
      registers,
      collect() {
        this.reset();
        for (const i of read(() => source.instances?.()) ?? []) this.set({ onion: i.onion }, pick(i));
      },
    });
  instanceGauge('torplus_instance_live', '1 for a backend bridge of the master onion that beat within 30 s, else 0 (per backend onion).', (i) => (i.live ? 1 : 0));
  instanceGauge('torplus_instance_visitors', 'Visitors a backend bridge has now, as of its last heartbeat.', (i) => i.visitors);
  instanceGauge('torplus_instance_served_bytes', 'Bytes a backend bridge has served since it started, as of its last heartbeat.', (i) => i.bytesServed);

  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'torplus_' });

  return {
    registry,
    observeVerification(seconds: number): void {
      if (Number.isFinite(seconds) && seconds >= 0) verification.observe(seconds);
    },
    router(token: Secret, opts: MetricsRouterOptions = {}): Router {
      const r = Router();
      const admin = requireAdmin(token);
      r.get('/metrics', (req: Request, res: Response, next: NextFunction) => {
        if (opts.allowLoopbackWithoutToken && isLoopbackExempt(req.socket)) return next();
        admin(req, res, next);
      }, (_req: Request, res: Response, next: NextFunction) => {
        registry.metrics().then(
          (text) => res.status(200).set('Content-Type', registry.contentType).set('Cache-Control', 'no-store').send(text),
          next,
        );
      });
      return r;
    },
  };
}

/** 127.0.0.0/8, ::1, and 127.x mapped into IPv6 (::ffff:127.x.y.z). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase();
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) !== 6) return false;
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  // Node writes an IPv4 peer on a dual-stack socket as ::ffff:a.b.c.d.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped?.[1] !== undefined && isIP(mapped[1]) === 4 && mapped[1].startsWith('127.');
}

/**
 * A request may skip the token when it came on a direct connection from loopback.
 *
 * Onion requests reach the API on a loopback socket too: tor connects to the API's onion listener
 * on 127.0.0.1 (`ApiService.onionTarget`), and that listener hands the socket to the same HTTP
 * server. But the listener tags every socket with its Tor circuit (`tagSocket`, from tor's PROXY
 * line) before handing it over, and a socket that does not start with a valid PROXY line is closed
 * and never reaches express. So a socket tagged as a circuit — over HTTPS, the raw socket under
 * the TLS one, which `visitorOf` checks — is an onion visitor, whatever its remote address says,
 * and needs the token.
 */
export function isLoopbackExempt(socket: Socket): boolean {
  return visitorOf(socket).kind === 'direct' && isLoopbackAddress(socket.remoteAddress);
}
