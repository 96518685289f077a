// Renders the torrc the bridge hands to its own tor. Everything is explicit so that nothing
// depends on /etc/tor (tor is started with an empty --defaults-torrc).
import { ONIONBALANCE_INSTANCE_LINE } from './onionbalance-instance.js';

export interface HiddenServicePortSpec {
  virtualPort: number;
  /** Where tor forwards the stream: "127.0.0.1:8080", "[::1]:8080" or "unix:/path". */
  target: string;
}

export interface TorrcOptions {
  dataDir: string;
  hiddenServiceDir: string;
  /** Tor writes `PORT=127.0.0.1:N` here once the control port listens (we ask for port auto). */
  controlPortFile: string;
  /** Tor exits on its own when this process dies, so a crashed supervisor leaves no tor behind. */
  ownerPid: number;
  ports: readonly HiddenServicePortSpec[];
  powDefense: boolean;
  introDosDefense: boolean;
  /** Default 0: the bridge itself needs no SOCKS port. A port is always bound to loopback. */
  socksPort?: number | 'auto' | 0;
  /** Appended verbatim at the end, e.g. a private network's TestingTorNetwork/DirAuthority lines. */
  extraConfig?: string;
  /**
   * The service is an Onionbalance instance (a backend of a master address): tor then accepts
   * introductions for the master. Its HiddenServiceDir must hold `ob_config` naming the master.
   */
  onionbalanceInstance?: boolean;
}

export function renderTorrc(o: TorrcOptions): string {
  if (!Number.isInteger(o.ownerPid) || o.ownerPid <= 0) throw new TypeError(`torrc: bad ownerPid ${o.ownerPid}`);
  if (o.ports.length === 0) throw new TypeError('torrc: at least one HiddenServicePort is needed');
  const lines = [
    '# Written by the TorPlus bridge on every start: edits here are lost. Use the extra config file.',
    `DataDirectory ${torrcValue(o.dataDir)}`,
    // Port "auto" + the port file: no fixed port to collide with another tor on the machine.
    'ControlPort 127.0.0.1:auto',
    `ControlPortWriteToFile ${torrcValue(o.controlPortFile)}`,
    'CookieAuthentication 1',
    `__OwningControllerProcess ${o.ownerPid}`,
    `SocksPort ${socks(o.socksPort)}`,
    // Tor must stay in the foreground, logging to stdout, which the service reads.
    'RunAsDaemon 0',
    'Log notice stdout',
    `HiddenServiceDir ${torrcValue(o.hiddenServiceDir)}`,
  ];
  for (const p of o.ports) {
    if (!Number.isInteger(p.virtualPort) || p.virtualPort < 1 || p.virtualPort > 65535) {
      throw new TypeError(`torrc: bad virtual port ${p.virtualPort}`);
    }
    // Tor splits HiddenServicePort on spaces, so a target cannot be quoted: forbid whitespace.
    if (!/^\S+$/.test(p.target)) throw new TypeError(`torrc: bad HiddenServicePort target ${JSON.stringify(p.target)}`);
    lines.push(`HiddenServicePort ${p.virtualPort} ${p.target}`);
  }
  // A PROXY v1 line before each stream carries the circuit ID: the gateway meters per circuit.
  lines.push('HiddenServiceExportCircuitID haproxy');
  if (o.onionbalanceInstance) lines.push(ONIONBALANCE_INSTANCE_LINE);
  if (o.powDefense) {
    // Proof-of-work against introduction floods; rate/burst as recommended by Onionspray.
    lines.push('HiddenServicePoWDefensesEnabled 1', 'HiddenServicePoWQueueRate 250', 'HiddenServicePoWQueueBurst 2500');
  }
  if (o.introDosDefense) lines.push('HiddenServiceEnableIntroDoSDefense 1');
  let text = lines.join('\n') + '\n';
  if (o.extraConfig !== undefined && o.extraConfig.trim() !== '') {
    if (o.extraConfig.includes('\0')) throw new TypeError('torrc: extra config contains NUL');
    text += '# Extra configuration (verbatim)\n' + o.extraConfig.replace(/\r\n?/g, '\n');
    if (!text.endsWith('\n')) text += '\n';
  }
  return text;
}

/**
 * A torrc value. Plain paths are written as they are; anything tor's line parser would alter
 * ('#' starts a comment, a leading quote starts a quoted string, trailing spaces are trimmed,
 * backslashes) is written as a quoted string with C escapes, which tor decodes. Shared with the
 * Onionbalance frontend's torrc (balance/balance-torrc.ts).
 */
export function torrcValue(v: string): string {
  if (/[\r\n\0]/.test(v)) throw new TypeError(`torrc: value may not contain CR, LF or NUL: ${JSON.stringify(v)}`);
  if (v === '') throw new TypeError('torrc: empty value');
  if (/^[A-Za-z0-9_./:@+,=~-]+$/.test(v)) return v;
  return '"' + v.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

function socks(p: TorrcOptions['socksPort']): string {
  if (p === undefined || p === 0) return '0';
  if (p === 'auto') return '127.0.0.1:auto';
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TypeError(`torrc: bad SocksPort ${p}`);
  return `127.0.0.1:${p}`;
}
