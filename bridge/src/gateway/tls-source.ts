import { createSecureContext, type SecureContext } from 'node:tls';

// This file also runs in the proxy worker processes, straight from the TypeScript source under jest:
// erasable TypeScript only.

/** Where the HTTPS listeners get their certificate: SSL_DIR, reloaded when it changes (tls/). */
export interface TlsSource {
  /** The certificate chain and key (PEM) in use, or undefined while there is none. */
  current(): { cert: string | Buffer; key: string | Buffer } | undefined;
  /** Called after each successful (re)load; returns the unsubscribe function. */
  onChange(fn: () => void): () => void;
}

/**
 * Server options that always serve `source`'s current pair: SNICallback for clients that name the
 * host (all browsers), and the default context, replaced on every reload, for those that do not.
 * Connections already open keep the context they shook hands with, so nothing is dropped.
 */
export function tlsServerOptions(source: TlsSource): { SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
  let ctx: SecureContext | undefined;
  let made: unknown;
  return {
    SNICallback: (_name, cb) => {
      const pair = source.current();
      if (!pair) return cb(new Error('no certificate loaded yet (SSL_DIR is empty and ACME has not issued one)'));
      if (made !== pair) {
        ctx = createSecureContext(pair);
        made = pair;
      }
      cb(null, ctx);
    },
  };
}
