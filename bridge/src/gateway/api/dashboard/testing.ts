// Test support: a fake DashboardSource and an express app on 127.0.0.1 serving the router.
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret } from '../../../config/secret.js';
import { dashboardRouter } from './dashboard-routes.js';
import type { DashboardEvent, DashboardSnapshot, DashboardSource } from './source.js';

export const TEST_TOKEN = 'dashboard-admin-token-0123456789abcdef';
export const TEST_ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';

export function sampleSnapshot(over: Partial<DashboardSnapshot> = {}): DashboardSnapshot {
  return {
    onion: `${TEST_ONION}.onion`,
    domain: 'example.com',
    txt: { record: undefined, state: 'found', detail: 'torplus.example.com names this onion' },
    ipfs: {
      root: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
      dnslink: 'dnslink=/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
      top: [{ cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', count: 42, dagSize: 3_500_000 }],
      peers: [{ id: '12D3KooWPeerOne', addr: '/onion3/abc:4001', filled: 3 }],
      lastFill: { at: '2025-05-01T10:00:00Z', blocks: 17, ok: true },
    },
    tor: { bootstrapped: true, progress: 100, detail: 'Done', restarts: 2, published: true },
    visitors: { now: 7, throttled: 3, freeBytes: 1_572_864, paidBytes: 5 * 1024 ** 3 },
    earnings: {
      totalXlm: '12.5',
      receipts: 9,
      history: [
        { at: '2025-05-01T00:00:00Z', xlm: '0' },
        { at: '2025-05-02T00:00:00Z', xlm: '4.5' },
        { at: '2025-05-03T00:00:00Z', xlm: '12.5' },
      ],
    },
    certificate: { names: ['torplus.example.com'], notAfter: '2025-08-01T00:00:00Z', daysLeft: 61, detail: 'Let’s Encrypt' },
    payments: { enabled: true, account: 'GBRIDGEACCOUNTEXAMPLE', network: 'test' },
    ...over,
  };
}

export class FakeSource implements DashboardSource {
  readonly listeners = new Set<(e: DashboardEvent) => void>();
  constructor(public current: DashboardSnapshot = sampleSnapshot()) {}
  snapshot(): DashboardSnapshot {
    return this.current;
  }
  subscribe(fn: (e: DashboardEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  emit(e: DashboardEvent): void {
    for (const fn of this.listeners) fn(e);
  }
}

export interface TestApp {
  base: string;
  source: FakeSource;
  close(): Promise<void>;
}

export async function startDashboardApp(source = new FakeSource()): Promise<TestApp> {
  const app = express();
  app.use('/', dashboardRouter(source, new Secret(TEST_TOKEN)));
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    source,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
