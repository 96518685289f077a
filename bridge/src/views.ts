// The operator's views of the running bridge, /metrics and the dashboard, assembled from the
// services' own reports (health(), stats(), events). Read-only: nothing here changes a service.
import type { MetricsSource } from './gateway/api/metrics/metrics.js';
import type { Meter } from './gateway/meter/meter.js';
import type { IpfsService } from './ipfs/ipfs-service.js';
import type { PaymentsService } from './payments/payments-service.js';
import type { TlsService } from './tls/tls-service.js';
import type { TorService } from './tor/tor-service.js';
import type { DashboardEvent, DashboardSnapshot, DashboardSource } from './gateway/api/dashboard/source.js';
import type { PaymentComplete, PaymentRequest } from './payments/types.js';
import { formatXlm } from './config/amount.js';

export interface ViewSources {
  /** The bridges behind the master onion, when this one is a backend. */
  instances?: { master: string; list: () => Array<{ onion: string; lastBeat: number; visitors: number; bytesServed: number; live: boolean; self: boolean }> };
  meter: Meter;
  payments: PaymentsService;
  tor: TorService;
  ipfs: IpfsService | undefined;
  tls: TlsService | undefined;
}

/** Payment requests and completions since start (the payments service emits, this counts). */
export class PaymentCounts {
  requested = 0;
  completed = 0;
  /** Cumulative earnings since start after each payment, for the dashboard's chart (from 0 at start). */
  readonly history: Array<{ at: number; stroops: bigint }> = [{ at: Date.now(), stroops: 0n }];
  /** The last events, newest first, for a dashboard page opened after they happened. */
  readonly recent: DashboardEvent[] = [];
  /**
   * Everything credited, as the database last said (all bridges, with PostgreSQL): read again after each
   * payment and every minute, so a /metrics scrape never waits for the database.
   */
  earnedStroops = 0n;
  private readonly payments: PaymentsService;

  constructor(payments: PaymentsService) {
    this.payments = payments;
    setInterval(() => this.refreshEarnings(), 60_000).unref();
    const remember = (e: DashboardEvent) => {
      this.recent.unshift(e);
      if (this.recent.length > 20) this.recent.pop();
    };
    payments.on('requested', (r) => {
      this.requested++;
      remember(requestedEvent(r));
    });
    payments.on('complete', (e) => {
      this.completed++;
      remember(completeEvent(e));
      const last = this.history.at(-1)?.stroops ?? 0n;
      this.history.push({ at: Date.now(), stroops: last + e.receipt.amount });
      if (this.history.length > 1000) this.history.shift();
      this.refreshEarnings();
    });
  }

  /** Reads the earnings again (when payments run); a failure keeps the last value. */
  refreshEarnings(): void {
    if (!this.payments.enabled || !this.payments.health().ok) return;
    this.payments.earnings().then((e) => (this.earnedStroops = e.creditedStroops), () => undefined);
  }
}

export function metricsSource(s: ViewSources, counts: PaymentCounts): MetricsSource {
  return {
    bytes: () => s.meter.totals(),
    visitors: () => {
      const m = s.meter.stats();
      return { now: m.visitors, throttled: m.throttled };
    },
    payments: () => ({
      requested: counts.requested,
      completed: counts.completed,
      earnedStroops: counts.earnedStroops,
    }),
    tor: () => {
      const t = s.tor.health();
      return { bootstrapped: t.bootstrapped, progress: t.progress, restarts: t.restarts, published: t.published };
    },
    ipfs: () => s.ipfs?.stats(),
    certificate: () => {
      const h = s.tls?.health();
      return h ? { daysLeft: (h.daysLeft as number | null | undefined) ?? null } : undefined;
    },
    instances: () => s.instances?.list(),
  };
}

export interface DashboardSources extends ViewSources {
  counts: PaymentCounts;
  dns: { health(): { state: string; detail: string; record?: string } } | undefined;
  domain: string | undefined;
  network: string;
}

const xlm = (stroops: bigint): string => formatXlm(stroops);

export function dashboardSource(s: DashboardSources): DashboardSource {
  return {
    async snapshot(): Promise<DashboardSnapshot> {
      const tor = s.tor.health();
      const m = s.meter.stats();
      const totals = s.meter.totals();
      const earned = s.payments.enabled && s.payments.health().ok ? await s.payments.earnings().catch(() => undefined) : undefined;
      const dns = s.dns?.health();
      const cert = s.tls?.health();
      const root = s.ipfs?.root()?.toString();
      let onion: string | undefined;
      try {
        onion = s.tor.onionAddress();
      } catch {
        onion = undefined;
      }
      return {
        onion,
        domain: s.domain,
        txt: dns
          ? { record: dns.record, state: dns.state as DashboardSnapshot['txt']['state'], detail: dns.detail }
          : { record: undefined, state: 'off', detail: 'DOMAIN is not set: no record is checked' },
        ipfs: s.ipfs && {
          root,
          dnslink: root && s.domain ? `_dnslink.torplus.${s.domain} TXT "dnslink=/ipfs/${root}"` : undefined,
          top: await s.ipfs.top(10).catch(() => []),
          peers: s.ipfs.peers() as Array<Record<string, unknown>>,
          lastFill: s.ipfs.lastFillStatus(),
        },
        tor: { bootstrapped: tor.bootstrapped, progress: tor.progress, detail: tor.detail, restarts: tor.restarts, published: tor.published },
        visitors: { now: m.visitors, throttled: m.throttled, freeBytes: totals.free, paidBytes: totals.paid },
        earnings: {
          totalXlm: xlm(earned?.creditedStroops ?? 0n),
          receipts: earned?.receipts ?? 0,
          history: s.counts.history.map((h) => ({ at: new Date(h.at).toISOString(), xlm: xlm(h.stroops) })),
        },
        certificate: cert && {
          names: (cert.names as string[] | undefined) ?? [],
          notAfter: (cert.notAfter as string | null | undefined) ?? null,
          daysLeft: (cert.daysLeft as number | null | undefined) ?? null,
          detail: cert.detail,
        },
        payments: { enabled: s.payments.enabled, account: s.payments.health().account as string | undefined, network: s.network },
        recentEvents: [...s.counts.recent],
        ...(s.instances
          ? { instances: { master: s.instances.master, list: s.instances.list().map((i) => ({ ...i, lastBeat: new Date(i.lastBeat).toISOString() })) } }
          : {}),
      };
    },
    subscribe(fn: (e: DashboardEvent) => void): () => void {
      const onRequested = (r: PaymentRequest) => fn(requestedEvent(r));
      const onComplete = (e: PaymentComplete) => fn(completeEvent(e));
      s.payments.on('requested', onRequested);
      s.payments.on('complete', onComplete);
      return () => {
        s.payments.off('requested', onRequested);
        s.payments.off('complete', onComplete);
      };
    },
  };
}

function requestedEvent(r: PaymentRequest): DashboardEvent {
  return { type: 'payment-requested', at: new Date().toISOString(), text: `${xlm(r.amount)} XLM requested (${r.service}, request ${r.id})`, data: { id: r.id, service: r.service, amount: xlm(r.amount) } };
}

function completeEvent(e: PaymentComplete): DashboardEvent {
  return {
    type: 'payment-complete',
    at: new Date().toISOString(),
    text: `${xlm(e.receipt.amount)} XLM paid by ${e.receipt.from.slice(0, 8)}… (${e.receipt.via})`,
    data: { id: e.request.id, amount: xlm(e.receipt.amount), via: e.receipt.via, service: e.request.service },
  };
}
