import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * The pid among `pids` that owns the TCP connection from 127.0.0.1:`localPort` (Linux /proc): an
 * upstream learns from it which proxy worker forwarded a request.
 */
export function ownerOfLocalPort(localPort: number, pids: number[]): number | undefined {
  const hexPort = localPort.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hexPort}`));
  const inode = line?.trim().split(/\s+/)[9];
  if (!inode) return undefined;
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* process gone */
    }
  }
  return undefined;
}
