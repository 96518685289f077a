// A QR code as inline SVG, drawn here so that the pay page needs no image, script or other request.
// Erasable TypeScript only: the proxy workers load this as is.
import QRCode from 'qrcode';
import { esc } from '../../util/html.js';

const cache = new Map<string, string>();
/** A payment request's URI is drawn once per request, not per page view; a few hundred is plenty. */
const MAX_CACHED = 256;

/**
 * The QR code of `text` as an `<svg>` whose dark modules are one path.
 * Error correction M (15%): a phone camera reads it off a screen at once, and it stays small. The
 * SVG holds only path data, never `text`; `label` is escaped here.
 */
export function qrSvg(text: string, label: string): string {
  let path = cache.get(text);
  let size = 0;
  if (path === undefined) {
    const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
    size = qr.modules.size;
    const data = qr.modules.data;
    // Each row is one subpath of stroked runs ("m<gap> 0h<run>"): a 1-module-wide line through the
    // middle of the row. About 6 KB for a SEP-7 URI, a third of drawing each module as a rectangle.
    let d = '';
    for (let y = 0; y < size; y++) {
      let pen = 0;
      let row = '';
      for (let x = 0; x < size; ) {
        if (!data[y * size + x]) {
          x++;
          continue;
        }
        let run = 1;
        while (x + run < size && data[y * size + x + run]) run++;
        row += `m${x - pen} 0h${run}`;
        pen = x + run;
        x += run;
      }
      if (row) d += `M4 ${y + 4.5}${row}`;
    }
    path = `${size}|${d}`;
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(text, path);
  }
  const bar = path.indexOf('|');
  size = Number(path.slice(0, bar));
  const view = size + 8; // a quiet zone of 4 modules on each side, as the standard asks
  return `<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${view} ${view}" shape-rendering="crispEdges" role="img" aria-label="${esc(label)}"><rect width="${view}" height="${view}" fill="#fff"/><path stroke="#000" stroke-width="1" fill="none" d="${path.slice(bar + 1)}"/></svg>`;
}
