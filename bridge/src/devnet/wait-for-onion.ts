// Fetch an onion URL through a SOCKS port until it answers: what every test and the demo do while an onion
// service's descriptor is being published. Split out of tornet.ts, which re-exports it.
//
// global-setup.ts loads tornet.ts (and so this file) with Node's type stripping: erasable syntax only.
import { performance } from 'node:perf_hooks';
import { socksGet, type FetchResult } from './socks-http.js';

/**
 * Fetch an onion URL through the client's SocksPort until it answers: one try every ~1 s, each with a short
 * timeout (a fetch can hang until the service's descriptor is uploaded) and on new circuits. Resolves with the first HTTP
 * response of any status; rejects after `timeoutMs` with the last error.
 */
export async function waitForOnion(
  url: string,
  socksPort: number,
  opts: { timeoutMs: number; signal?: AbortSignal; tryTimeoutMs?: number; headers?: Record<string, string> },
): Promise<FetchResult> {
  const start = performance.now();
  const tryTimeout = opts.tryTimeoutMs ?? 5_000;
  let lastError: unknown;
  let tries = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new Error(`waitForOnion ${url}: aborted`, { cause: opts.signal.reason });
    const remaining = opts.timeoutMs - (performance.now() - start);
    // A last try squeezed into the final few milliseconds would only replace a useful error with a timeout.
    if (remaining <= 0 || (tries > 0 && remaining < Math.min(tryTimeout, 250))) break;
    const tryStart = performance.now();
    tries++;
    try {
      return await socksGet(url, {
        socksPort,
        // Each try on circuits of its own: after an onion service restarts, a circuit to the old
        // instance can stall for minutes, while a new one gets through (FIELD-NOTES, bench/proxy).
        isolation: `wait-${process.pid}-${tries}-${Math.random().toString(36).slice(2)}`,
        timeoutMs: Math.max(1, Math.min(tryTimeout, remaining)),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.headers ? { headers: opts.headers } : {}),
      });
    } catch (err) {
      lastError = err;
    }
    const pause = Math.max(250, 1_000 - (performance.now() - tryStart));
    const left = opts.timeoutMs - (performance.now() - start);
    if (left <= 0) break;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(pause, left));
      function done(): void {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      }
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  }
  const msg = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`waitForOnion ${url}: no answer after ${opts.timeoutMs} ms (${tries} tries); last error: ${msg}`, {
    cause: lastError,
  });
}
