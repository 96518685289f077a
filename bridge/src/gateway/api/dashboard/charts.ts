import { esc } from './format.js';

const W = 600;
const H = 180;
const PAD = { left: 8, right: 8, top: 24, bottom: 24 };

/**
 * The earnings chart: an inline SVG polyline of `history` (x = time, y = XLM as given, so the
 * supervisor decides whether points are running totals). Points with an unreadable time or amount
 * are skipped; with none left it says so instead of drawing an empty box.
 */
export function earningsChart(history: ReadonlyArray<{ at: string; xlm: string }> | undefined): string {
  const points = (history ?? [])
    .map((p) => ({ t: Date.parse(String(p?.at)), v: Number(p?.xlm), at: String(p?.at) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  if (points.length === 0) return '<p class="empty" id="chart-empty">No earnings yet: the chart starts with the first payment.</p>';

  const t0 = points[0]!.t;
  const t1 = points[points.length - 1]!.t;
  const max = Math.max(...points.map((p) => p.v), 0);
  const min = Math.min(...points.map((p) => p.v), 0);
  const span = max - min || 1;
  const x = (t: number) => (t1 === t0 ? W / 2 : PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right));
  const y = (v: number) => PAD.top + (1 - (v - min) / span) * (H - PAD.top - PAD.bottom);
  const coords = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  const line =
    points.length === 1
      ? `<circle cx="${coords[0]!.split(',')[0]}" cy="${coords[0]!.split(',')[1]}" r="4" class="chart-line-dot"/>`
      : `<polyline class="chart-line" fill="none" points="${coords.join(' ')}"/>`;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  return [
    `<svg class="chart" id="earnings-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Earnings over time, up to ${esc(max)} XLM">`,
    `<line class="chart-axis" x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}"/>`,
    line,
    `<text class="chart-label" x="${PAD.left}" y="18">max ${esc(max)} XLM</text>`,
    `<text class="chart-label" x="${PAD.left}" y="${H - 6}">${esc(label(first.at))}</text>`,
    `<text class="chart-label" x="${W - PAD.right}" y="${H - 6}" text-anchor="end">${esc(label(last.at))}</text>`,
    '</svg>',
  ].join('');
}

/** "2025-01-02T03:04:05Z" → "2025-01-02 03:04" (UTC); anything else as given. */
function label(at: string): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toISOString().slice(0, 16).replace('T', ' ');
}
