// The frontend tor's torrc. Unlike the bridge's (tor/torrc.ts, which always has the hidden service) this
// tor serves nothing itself: onionbalance signs the master descriptor and posts it through this tor's
// control port (HSPOST), and fetches the backends' descriptors through it (HSFETCH). So: no hidden service,
// no SOCKS port, a loopback control port with cookie authentication, and the tor dies with the bridge.
// Everything is explicit: tor is started with an empty --defaults-torrc, so /etc/tor plays no part.
import { torrcValue } from '../tor/torrc.js';

export interface BalanceTorrcOptions {
  dataDir: string;
  /** Tor writes `PORT=127.0.0.1:N` here once the control port listens (we ask for port auto). */
  controlPortFile: string;
  /** Tor exits on its own when this process dies. */
  ownerPid: number;
  /** TOR_EXTRA_CONFIG's lines, verbatim at the end: which network to join (a private test network, say). */
  extraConfig?: string;
}

export function renderBalanceTorrc(o: BalanceTorrcOptions): string {
  if (!Number.isInteger(o.ownerPid) || o.ownerPid <= 0) throw new TypeError(`torrc: bad ownerPid ${o.ownerPid}`);
  const lines = [
    '# Written by torplus-bridge balance on every start: edits here are lost. Use TOR_EXTRA_CONFIG.',
    `DataDirectory ${torrcValue(o.dataDir)}`,
    // Port "auto" + the port file: no fixed port to collide with another tor (a backend bridge) here.
    'ControlPort 127.0.0.1:auto',
    `ControlPortWriteToFile ${torrcValue(o.controlPortFile)}`,
    'CookieAuthentication 1',
    `__OwningControllerProcess ${o.ownerPid}`,
    'SocksPort 0',
    'RunAsDaemon 0',
    'Log notice stdout',
  ];
  let text = lines.join('\n') + '\n';
  const extra = o.extraConfig;
  if (extra !== undefined && extra.trim() !== '') {
    if (extra.includes('\0')) throw new TypeError('torrc: extra config contains NUL');
    text += '# Extra configuration (verbatim)\n' + extra.replace(/\r\n?/g, '\n');
    if (!text.endsWith('\n')) text += '\n';
  }
  return text;
}

/** A torrc value: plain when tor's parser reads it as is, else a quoted string with C escapes (as tor/torrc.ts). */
