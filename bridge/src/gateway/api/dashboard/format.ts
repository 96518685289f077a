// Small, pure formatting helpers for the dashboard. Everything that reaches HTML goes through `esc`.

export { esc } from '../../../util/html.js';

/** A finite number, or undefined (the source is typed, but the page must not trust it). */
export function num(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** 1536 → "1.5 KiB"; non-numbers → "–". */
export function formatBytes(value: unknown): string {
  let n = num(value);
  if (n === undefined || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** 12345 → "12,345"; non-numbers → "–". */
export function formatCount(value: unknown): string {
  const n = num(value);
  return n === undefined ? '–' : Math.round(n).toLocaleString('en-US');
}

/** An XLM decimal string as given, or "–" when it is not a number. */
export function formatXlm(value: unknown): string {
  const s = String(value ?? '').trim();
  return /^-?\d+(\.\d+)?$/.test(s) ? s : '–';
}

/** `abc…` for long identifiers (CIDs, accounts) shown where space is short. */
export function shorten(value: string, keep = 12): string {
  return value.length <= keep * 2 + 1 ? value : `${value.slice(0, keep)}…${value.slice(-keep)}`;
}

/** The onion host with `.onion` (the source may give it with or without). */
export function onionHost(onion: string): string {
  const bare = onion.trim().toLowerCase().replace(/\.onion$/, '');
  return `${bare}.onion`;
}

/** JSON.stringify that survives bigints (as decimal strings) and cycles (as "[cycle]"). */
export function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[cycle]';
      seen.add(v);
    }
    return v;
  });
}
