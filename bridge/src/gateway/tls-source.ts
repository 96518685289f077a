import type { SecureContext } from 'node:tls';

// This file also runs in the proxy worker processes, straight from the TypeScript source under jest:
// erasable TypeScript only.

/** Where the HTTPS listeners get their certificate: SSL_DIR, reloaded when it changes (tls/). */
export interface TlsSource {
  /**
   * The context of the pair in use, made once per (re)load by the source, or undefined while there is
   * none. Handshakes only look it up: parsing the key and chain per connection would be wasted work.
   */
  secureContext(): SecureContext | undefined;
  /** Called after each successful (re)load; returns the unsubscribe function. */
  onChange(fn: () => void): () => void;
}

/**
 * Server options that always serve `source`'s current pair, per handshake through SNICallback.
 * Connections already open keep the context they shook hands with, so nothing is dropped.
 */
export function tlsServerOptions(source: TlsSource): { SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
  return {
    SNICallback: (_name, cb) => {
      const ctx = source.secureContext();
      if (!ctx) return cb(new Error('no certificate loaded yet (SSL_DIR is empty and ACME has not issued one)'));
      cb(null, ctx);
    },
  };
}
