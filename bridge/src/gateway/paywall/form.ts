// The pay page's form posts: bounded reading, and the cross-site check.
import type { IncomingMessage } from 'node:http';

/** A signed transaction is a few KB; nothing the forms send is larger. */
const MAX_FORM_BYTES = 32 * 1024;

/** Reads an application/x-www-form-urlencoded body (at most 32 KiB). */
export function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        req.destroy();
        reject(new Error('the form is too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > 0 && type !== 'application/x-www-form-urlencoded') return reject(new Error('expected a form (application/x-www-form-urlencoded)'));
      resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

/**
 * The post comes from a page of this site: Sec-Fetch-Site says same-origin, or Origin names the Host the
 * visitor asked for. A post carrying neither is refused too: every browser that can show the pay page
 * sends at least one of them on a form post. Together with the SameSite=Lax session cookie, another
 * site can neither post these forms in the visitor's name nor read what they answer.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
