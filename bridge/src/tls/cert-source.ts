import type { TlsSource } from '../gateway/tls-source.js';
import type { CertStore } from './cert-store.js';

// Also runs in the proxy worker processes: erasable TypeScript only.

/** The gateway's view of a CertStore: the pair in use, and a call on each reload. */
export function certStoreSource(store: CertStore): TlsSource {
  return {
    secureContext: () => store.secureContext() ?? undefined,
    onChange: (fn) => {
      store.on('loaded', fn);
      return () => store.off('loaded', fn);
    },
  };
}
