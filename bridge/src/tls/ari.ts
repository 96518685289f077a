import { X509Certificate } from 'node:crypto';
import { getJson } from './https-json.js';

// ACME Renewal Information (RFC 9773). acme-client 5.4 has no ARI support and Debian's pebble 2.4
// announces no `renewalInfo` in its directory, so this is a small standalone lookup that the service
// uses when a directory offers it and skips otherwise.

const b64url = (b: Buffer): string => b.toString('base64url');

/** Reads one DER TLV at `off`: tag, content start, content end. */
function tlv(der: Buffer, off: number): { tag: number; start: number; end: number } {
  const tag = der[off]!;
  let len = der[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len };
}

/** The keyIdentifier of the certificate's Authority Key Identifier extension (OID 2.5.29.35). */
export function authorityKeyId(x509: X509Certificate): Buffer {
  const der = x509.raw;
  // Extensions are rare enough in byte patterns that searching for the encoded OID is reliable:
  // 06 03 55 1D 23, then an optional critical BOOLEAN, then an OCTET STRING wrapping the AKI SEQUENCE.
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  const at = der.indexOf(oid);
  if (at < 0) throw new Error('certificate has no Authority Key Identifier; ARI needs one');
  let next = tlv(der, at);
  let p = next.end;
  next = tlv(der, p);
  if (next.tag === 0x01) {
    p = next.end;
    next = tlv(der, p);
  }
  if (next.tag !== 0x04) throw new Error('malformed Authority Key Identifier extension');
  const seq = tlv(der, next.start);
  const first = tlv(der, seq.start);
  if (first.tag !== 0x80) throw new Error('Authority Key Identifier carries no keyIdentifier');
  return der.subarray(first.start, first.end);
}

/** The serial as DER INTEGER content bytes (with a leading 0 when the top bit is set). */
function serialBytes(x509: X509Certificate): Buffer {
  let hex = x509.serialNumber;
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return b;
}

/** RFC 9773 §4.1 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial). */
export function ariCertId(certPem: string): string {
  const x509 = new X509Certificate(certPem);
  return `${b64url(authorityKeyId(x509))}.${b64url(serialBytes(x509))}`;
}

export interface RenewalWindow {
  start: Date;
  end: Date;
  explanationURL?: string;
}

/**
 * Fetches the suggested renewal window for the leaf of `certPem` from `renewalInfoUrl` (the directory's
 * `renewalInfo`). Returns null when the CA has no opinion (404) and throws on anything else unusable.
 */
export async function fetchRenewalWindow(renewalInfoUrl: string, certPem: string, opts: { ca?: string; signal?: AbortSignal } = {}): Promise<RenewalWindow | null> {
  const url = `${renewalInfoUrl.replace(/\/$/, '')}/${ariCertId(certPem)}`;
  const res = await getJson(url, opts);
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`ARI ${url} answered HTTP ${res.status}`);
  const body = res.body as { suggestedWindow?: { start?: string; end?: string }; explanationURL?: string };
  const start = new Date(body.suggestedWindow?.start ?? NaN);
  const end = new Date(body.suggestedWindow?.end ?? NaN);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
    throw new Error(`ARI ${url} returned no usable suggestedWindow`);
  }
  return { start, end, explanationURL: body.explanationURL };
}

/** RFC 9773 §4.2: pick a uniformly random moment in the window, so that a fleet does not renew in lockstep. */
export function pickInWindow(w: RenewalWindow, random = Math.random): number {
  return w.start.getTime() + random() * (w.end.getTime() - w.start.getTime());
}
