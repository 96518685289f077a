// What the operator dashboard shows, as the supervisor provides it. The dashboard reads only this
// interface (injected), never the services themselves.

export interface DashboardSnapshot {
  onion: string | undefined;
  domain: string | undefined;
  /** The TXT record check (the same as doctor's and /healthz's `dns`). */
  txt: { record: string | undefined; state: 'pending' | 'found' | 'missing' | 'wrong' | 'error' | 'off'; detail: string };
  ipfs: { root: string | undefined; dnslink: string | undefined; top: Array<{ cid: string; count: number; dagSize: number }>; peers: Array<Record<string, unknown>>; lastFill: Record<string, unknown> | undefined } | undefined;
  tor: { bootstrapped: boolean; progress: number; detail: string; restarts: number; published: boolean };
  visitors: { now: number; throttled: number; freeBytes: number; paidBytes: number };
  /** Stroops as decimal strings (bigints do not survive JSON). */
  earnings: { totalXlm: string; receipts: number; history: Array<{ at: string; xlm: string }> };
  certificate: { names: string[]; notAfter: string | null; daysLeft: number | null; detail: string } | undefined;
  payments: { enabled: boolean; account: string | undefined; network: string };
  /** The last events, newest first, so that the live list is not empty on a fresh page load. */
  recentEvents?: DashboardEvent[];
  /** The bridges behind the master onion (BALANCE_MASTER_ONION); undefined for a bridge on its own. */
  instances?: { master: string; list: Array<{ onion: string; lastBeat: string; visitors: number; bytesServed: number; live: boolean; self: boolean }> };
}

export interface DashboardEvent {
  type: 'payment-requested' | 'payment-complete';
  at: string;
  /** A sentence for the live list, e.g. "0.01 XLM paid by GABC… (tab)". */
  text: string;
  data: Record<string, unknown>;
}

export interface DashboardSource {
  snapshot(): Promise<DashboardSnapshot> | DashboardSnapshot;
  /** Live events; returns the unsubscribe function. */
  subscribe(fn: (e: DashboardEvent) => void): () => void;
}
