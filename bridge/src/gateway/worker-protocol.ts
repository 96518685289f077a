// Messages between the gateway's primary process and its proxy workers (over the cluster IPC channel).

/** What a worker is started with (JSON in its TORPLUS_PROXY_WORKER environment variable). */
export interface WorkerConfig {
  upstream: string;
  listenHost: string;
  /** The plain port: the same for every worker (node:cluster shares it). */
  httpPort: number;
  /** The onion listener's port on 127.0.0.1, where tor's HiddenServicePort points. */
  onionPort: number;
  onionAddress: string | undefined;
  headerTimeoutMs: number | undefined;
  drainMs: number;
}

export type ToWorker = { t: 'onion-address'; address: string | undefined } | { t: 'stop'; drainMs: number };

export type ToPrimary =
  | { t: 'ready'; onionPort: number; httpPort: number }
  | { t: 'failed'; message: string }
  | { t: 'upstream-error'; message: string }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string };
