// The local ledger, programmatically: a small Horizon-compatible server persisted in SQLite, which the
// unmodified @stellar/stellar-sdk uses offline (development, the demo, tests). See README.md here.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_PASSPHRASE, LedgerEngine } from './engine.js';
import { createApp } from './routes.js';
import { StreamHub } from './sse.js';
import { openDatabase, Store } from './store.js';

export { DEFAULT_PASSPHRASE } from './engine.js';

export interface LedgerOptions {
  /** 0 (default) = a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Where the SQLite database lives (created with mode 0700); undefined = in memory, gone on close. */
  dataDir?: string;
  /** Default: the passphrase stored in `dataDir`, else DEFAULT_PASSPHRASE ('TorPlus Local Ledger ; 2026'). */
  networkPassphrase?: string;
  /** Aborting it closes the ledger. */
  signal?: AbortSignal;
  /** Interval of the SSE heartbeat comments (default 10 s). */
  heartbeatMs?: number;
}

export interface LedgerHandle {
  /** e.g. http://127.0.0.1:8000 (no trailing slash). */
  url: string;
  port: number;
  networkPassphrase: string;
  /** Creates `address` with 10,000 XLM (a createAccount from the root account). Rejects if it exists. */
  friendbot(address: string): Promise<void>;
  /** Ends streams and connections, then closes the database. Idempotent. */
  close(): Promise<void>;
}

export async function startLedger(opts: LedgerOptions = {}): Promise<LedgerHandle> {
  opts.signal?.throwIfAborted();
  const host = opts.host ?? '127.0.0.1';
  const db = openDatabase(opts.dataDir);
  let server: Server | undefined;
  let hub: StreamHub | undefined;
  try {
    const store = new Store(db);
    const passphrase = opts.networkPassphrase ?? store.getMeta('network_passphrase') ?? DEFAULT_PASSPHRASE;
    const engine = new LedgerEngine(store, passphrase);
    const streams = new StreamHub(opts.heartbeatMs);
    hub = streams;
    engine.onLedger(() => streams.notify());
    const srv = createServer(createApp(engine, streams));
    server = srv;
    // Long-lived SSE responses: no request timeout.
    srv.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen({ host, port: opts.port ?? 0 }, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    const port = (srv.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= new Promise<void>((resolve) => {
        opts.signal?.removeEventListener('abort', onAbort);
        streams.close();
        srv.close(() => {
          db.close();
          resolve();
        });
        srv.closeAllConnections();
      }));
    const onAbort = () => void close();
    if (opts.signal?.aborted) {
      await close();
      opts.signal.throwIfAborted();
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    return {
      url: `http://${urlHost}:${port}`,
      port,
      networkPassphrase: passphrase,
      friendbot: async (address: string) => {
        engine.friendbot(address);
      },
      close,
    };
  } catch (e) {
    hub?.close();
    server?.close();
    if (db.open) db.close();
    throw e;
  }
}
