// Human sizes and rates for progress lines and summaries (binary units, like the client's MiB).

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 100 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? (bytes * 1000) / ms : 0)}/s`;
}

/** An onion name shortened for a one-line bar: the first 8 characters identify it well enough. */
export function shortPeer(peer: string): string {
  return peer.length > 20 ? `${peer.slice(0, 8)}…${peer.endsWith('.onion') ? '.onion' : peer.slice(-4)}` : peer;
}
