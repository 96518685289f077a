// What the kernel says about a process tree, read from /proc (Linux): who each process runs as,
// which capabilities it holds, and which process holds a listening socket. The appliance tests use
// it to prove "the bridge runs as uid 10001 and listens on port 80" from outside the processes.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcStatus {
  pid: number;
  name: string;
  /** Real, effective, saved and filesystem uid. */
  uids: number[];
  gids: number[];
  groups: number[];
  capEff: bigint;
  capAmb: bigint;
  noNewPrivs: boolean;
}

export const CAP_NET_BIND_SERVICE = 10n;

export function procStatus(pid: number): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const nums = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean).map(Number);
  return {
    pid,
    name: fields.get('Name') ?? '?',
    uids: nums('Uid'),
    gids: nums('Gid'),
    groups: nums('Groups'),
    capEff: BigInt('0x' + (fields.get('CapEff') ?? '0')),
    capAmb: BigInt('0x' + (fields.get('CapAmb') ?? '0')),
    noNewPrivs: fields.get('NoNewPrivs') === '1',
  };
}

/** The parent of each live process (from /proc/PID/stat; the command name may hold spaces or ')'). */
function parents(): Map<number, number> {
  const ppid = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ppid.set(Number(entry), Number(rest[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  return ppid;
}

/** pid and all its live descendants (the bridge, its proxy workers, tor). */
export function processTree(pid: number): number[] {
  const ppid = parents();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of ppid) if (parent === tree[i]) tree.push(child);
  return tree.filter((p) => ppid.has(p));
}

export function isAlive(pid: number): boolean {
  try {
    // A zombie is dead for our purposes: it runs nothing and holds no socket.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The socket inodes listening on TCP `port`, in the network namespace of `pid` (/proc/PID/net/tcp
 * and tcp6 are that namespace's tables).
 */
export function listeningInodes(pid: number, port: number): number[] {
  const inodes: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXADDR:HEXPORT; state 0A is LISTEN; field 9 is the inode.
      if (f.length < 10 || f[3] !== '0A') continue;
      if (parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.push(Number(f[9]));
    }
  }
  return inodes;
}

/** The processes among `pids` that hold socket `inode` open. */
export function socketHolders(inode: number, pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}
