import type { CID } from 'multiformats/cid';
import { encodeSegment } from './content-path.js';

/** Bump when the HTML changes, so the listing's ETag changes with it (path gateway spec). */
export const LISTING_VERSION = '1';

export interface ListingEntry {
  name: string;
  cid: CID;
  /** The link's Tsize: the size of the child's DAG, known without reading the child. */
  size: bigint;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function humanSize(bytes: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = Number(bytes);
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

/**
 * An HTML index of a directory. Names come from the content, i.e. from anyone who published it:
 * every one is HTML-escaped, and links are `./` + percent-encoded name, so a name such as
 * `javascript:x` or `//host` stays a relative path inside this directory. Sizes are the links'
 * Tsize (DAG size), so listing a large directory reads no child block.
 */
export function renderListing(opts: { ipfsPath: string; dir: CID; entries: ListingEntry[]; hasParent: boolean }): string {
  const rows = [...opts.entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => {
      const href = `./${encodeSegment(e.name)}`;
      return `<tr><td><a href="${escapeHtml(href)}">${escapeHtml(e.name)}</a></td><td title="${e.size} bytes">${humanSize(e.size)}</td><td><code>${escapeHtml(e.cid.toString())}</code></td></tr>`;
    });
  if (opts.hasParent) rows.unshift('<tr><td><a href="../">..</a></td><td></td><td></td></tr>');
  const title = `Index of ${escapeHtml(decodeForTitle(opts.ipfsPath))}`;
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td{padding:.2em 1em .2em 0}code{font-size:.85em;color:#666}</style>
</head>
<body>
<h1>${title}</h1>
<p><code>${escapeHtml(opts.dir.toString())}</code> · <a href="./?format=car">download as CAR</a></p>
<table>
<tr><th align="left">Name</th><th align="left">Size (DAG)</th><th align="left">CID</th></tr>
${rows.join('\n')}
</table>
</body>
</html>
`;
}

function decodeForTitle(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
