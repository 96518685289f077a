import { X509Certificate, createPrivateKey } from 'node:crypto';

/** What the bridge needs to know about a certificate/key pair, after it has been checked. */
export interface CertInfo {
  /** DNS names from the leaf's subjectAltName (the CN only when there is no SAN, as old tools do). */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** Whole days until notAfter (may be negative only in reports about refused pairs; a loaded pair is never expired). */
  daysLeft: number;
  /** SHA-256 fingerprint of the leaf, to tell a reload that changed nothing from one that did. */
  fingerprint256: string;
  serialNumber: string;
}

/** A pair that must not be served; `message` says which file and what to do. */
export class CertError extends Error {
  override name = 'CertError';
}

const DAY_MS = 86_400_000;

/** Splits a PEM bundle into its CERTIFICATE blocks (leaf first, as in fullchain.pem). */
export function splitPemCerts(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** DNS names of a certificate: SAN DNS entries, else the subject CN. */
export function certNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san) {
    // Node renders "DNS:a, DNS:b, IP Address:1.2.3.4"; only DNS names matter for host checks.
    return san
      .split(/,\s*/)
      .filter((p) => p.startsWith('DNS:'))
      .map((p) => p.slice(4).toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/**
 * Whether `names` cover `host`, with RFC 6125 wildcard rules: `*.example.org` matches exactly one extra
 * leftmost label (`a.example.org`, not `example.org` nor `a.b.example.org`).
 */
export function namesCover(names: readonly string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return names.some((n) => {
    if (n === h) return true;
    if (!n.startsWith('*.')) return false;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === n.slice(2);
  });
}

/**
 * Parses and checks a fullchain/privkey pair: both parse, the key belongs to the leaf, the leaf is
 * valid at `now`. Throws CertError with a message fit for an operator; returns the facts otherwise.
 */
export function inspectPair(certPem: string, keyPem: string, now = Date.now(), where = 'SSL_DIR'): CertInfo {
  const blocks = splitPemCerts(certPem);
  if (blocks.length === 0) throw new CertError(`${where}/fullchain.pem holds no PEM certificate; put the certificate chain (leaf first) there`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]!);
    for (const b of blocks.slice(1)) new X509Certificate(b);
  } catch (err) {
    throw new CertError(`${where}/fullchain.pem is not a valid certificate chain (${(err as Error).message}); replace it with the PEM chain from your CA`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CertError(`${where}/privkey.pem is not a valid private key (${(err as Error).message}); replace it with the PEM key the certificate was issued for`);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new CertError(`${where}/privkey.pem does not match the certificate in ${where}/fullchain.pem (${leaf.subject.replace(/\n/g, ', ')}); install the key that belongs to this certificate`);
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now) {
    throw new CertError(`${where}/fullchain.pem expired on ${notAfter.toISOString()}; renew it (or set ACME_EMAIL to let the bridge do it)`);
  }
  if (notBefore.getTime() > now) {
    throw new CertError(`${where}/fullchain.pem is not valid before ${notBefore.toISOString()}; check the system clock`);
  }
  return {
    names: certNames(leaf),
    notBefore,
    notAfter,
    daysLeft: Math.floor((notAfter.getTime() - now) / DAY_MS),
    fingerprint256: leaf.fingerprint256,
    serialNumber: leaf.serialNumber,
  };
}
