// Which requests may be answered with the pay page: a top-level navigation only. A sub-resource (an
// image, a script, a fetch, a range of a video) must never get HTML instead of what it asked for; it is
// throttled as before. Erasable TypeScript only: the proxy workers load this as is.
import type { IncomingMessage } from 'node:http';

/**
 * A top-level navigation: a GET whose Sec-Fetch-Mode is `navigate` (and Sec-Fetch-Dest `document`
 * when sent: a frame gets the site's bytes, throttled), or, from a browser without Fetch Metadata, a GET
 * whose Accept prefers text/html. Never a range request.
 */
export function isNavigation(req: IncomingMessage): boolean {
  if (req.method !== 'GET' || req.headers.range !== undefined) return false;
  const mode = req.headers['sec-fetch-mode'];
  if (mode !== undefined) {
    const dest = req.headers['sec-fetch-dest'];
    return mode === 'navigate' && (dest === undefined || dest === 'document');
  }
  return prefersHtml(req.headers.accept);
}

/** Accept ranks text/html (or XHTML) at least as high as anything else, and above zero. */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let other = 0;
  // Bounded on hostile input: a browser's Accept has a handful of entries.
  for (const part of accept.slice(0, 1000).split(',').slice(0, 30)) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    const t = type.trim();
    if (t === 'text/html' || t === 'application/xhtml+xml') html = Math.max(html, q);
    else other = Math.max(other, q);
  }
  return html > 0 && html >= other;
}
