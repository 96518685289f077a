// Messages between the gateway's primary process and its proxy workers (over the cluster IPC channel).
import type { PaywallSettings } from './paywall/paywall.js';

/** What a worker is started with (JSON in its TORPLUS_PROXY_WORKER environment variable). */
export interface WorkerConfig {
  upstream: string;
  /**
   * The bridge's own services by path prefix (/ipfs/, ACME challenges, the pay page's answers):
   * [prefix, upstream URL, metered (default true)].
   */
  routes?: Array<[string, string, boolean?]>;
  /** HTTPS: each worker watches SSL_DIR itself and listens on both ports (shared by node:cluster). */
  tls?: { sslDir: string; httpsPort: number; onionTlsPort: number };
  listenHost: string;
  /** The plain port: the same for every worker (node:cluster shares it). */
  httpPort: number;
  /** The onion listener's port on 127.0.0.1, where tor's HiddenServicePort points. */
  onionPort: number;
  onionAddress: string | undefined;
  headerTimeoutMs: number | undefined;
  drainMs: number;
  /** Visitors are metered: the worker keeps a RemoteVisitorMeter, the primary the Meter. */
  metered?: boolean;
  /** PAYWALL=page: throttled visitors' navigations get the pay page, rendered in the worker. */
  paywall?: PaywallSettings;
}

export type ToWorker =
  | { t: 'onion-address'; address: string | undefined }
  | { t: 'stop'; drainMs: number }
  /** The primary loaded a new certificate (ACME issued or renewed one): read SSL_DIR again now. */
  | { t: 'tls-reload' }
  | MeterToWorker;

export type ToPrimary =
  | { t: 'ready'; onionPort: number; httpPort: number }
  | { t: 'failed'; message: string }
  | { t: 'upstream-error'; message: string }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }
  | MeterToPrimary;

// --- metering across workers (meter/meter-host.ts in the primary, meter/remote-visitor-meter.ts in
// each worker). The primary keeps the one Meter: every visitor's allowance, credit and throttle.
//
// A subject is what a request presents: its visitor key (`circuit:N` or `ip:ADDRESS`) and, when it
// sends one, its session token, as `KEY` or `KEY\nTOKEN`. The primary resolves a subject to its
// account (the token's session, or the visitor's own account, or what that became when it paid), so
// two subjects of one account share its allowance and its throttle.

/** What a worker needs to know about a subject's account: pushed by the primary on every change. */
export interface MeterState {
  /** The free allowance and the paid credit are used up. */
  mustPay: boolean;
  /** Throttled: every slice is reserved from the account's bucket in the primary. */
  throttled: boolean;
  /**
   * Close to having to pay (the last bytes of the free allowance or of the paid credit), or to being
   * throttled (must pay, and the grace period ends within a second): every slice is reserved from
   * the primary as if throttled (answered at once while it is not), so the moment the visitor must
   * pay, and then the throttle, is exact however many workers carry it.
   */
  near?: boolean;
  /** The open payment request, when mustPay. */
  request?: {
    id: string;
    expiresAt: number;
    /** The 402 body (the request as JSON), ready to send. */
    body: string;
    /** The payment URL for each Host header the workers reported: [host, url, host, url, …]. */
    urls: string[];
  };
  /** The session's bearer token, handed out with the payment headers. */
  token?: string;
}

export type MeterToPrimary =
  /** The worker meters this subject (first request, or a Host header not reported yet): answer with its state. */
  | { t: 'meter-open'; k: string; host: string }
  /** Bytes sent at full speed since the last batch: [subject, bytes, subject, bytes, …]. */
  | { t: 'meter-count'; c: (string | number)[] }
  /** A throttled slice: count it and answer how long to hold it (the account's token bucket). */
  | { t: 'meter-reserve'; k: string; n: number; id: number }
  /** The subject must pay and the worker knows no open request: make one (idempotent). */
  | { t: 'meter-ensure'; k: string }
  /** The worker no longer meters the subject (idle). */
  | { t: 'meter-drop'; k: string };

export type MeterToWorker =
  | { t: 'meter-state'; k: string; s: MeterState }
  | { t: 'meter-reserved'; id: number; wait: number };
