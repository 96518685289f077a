// The libp2p 3 Transport for /onion3 multiaddrs: dials through tor's SOCKS port, listens on the
// local target of tor's HiddenServicePort. Modelled on @libp2p/tcp.
import {
  InvalidMultiaddrError,
  InvalidParametersError,
  serviceCapabilities,
  transportSymbol,
  type ComponentLogger,
  type Connection,
  type CreateListenerOptions,
  type DialTransportOptions,
  type Listener,
  type Logger,
  type Transport,
} from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { Onion3Connection } from './connection.js';
import { NoSocksPortError } from './errors.js';
import { Onion3Listener, type Onion3ListenTarget } from './listener.js';
import { isOnion3, parseOnion3 } from './onion3-address.js';
import { socksDial, type SocksEndpoint } from './socks-dial.js';

export interface Onion3Init {
  /**
   * Where tor's SOCKS5 port is, asked at every dial (tor may restart on another port).
   * Returning undefined, or leaving this out, makes dials fail with a NoSocksPortError.
   */
  socks?: () => SocksEndpoint | undefined | Promise<SocksEndpoint | undefined>;
  /**
   * The local TCP target of tor's `HiddenServicePort <virtual port> <host>:<port>`. The onion
   * address and virtual port themselves come from the `/onion3/<address>:<virtual port>` listen
   * multiaddr. Without this option the transport can only dial.
   */
  listen?: Onion3ListenTarget;
  /**
   * Expect tor's PROXY protocol v1 line (`HiddenServiceExportCircuitID haproxy`) at the start of
   * each inbound stream; strip it and record the circuit ID (see circuitIdOf). A stream without a
   * valid line is closed. Default false: the raw stream is used. Must match tor's configuration.
   */
  proxyProtocol?: boolean;
  /** How long an inbound stream may take to deliver its PROXY line. Default 10 000 ms. */
  proxyHeaderTimeoutMs?: number;
  /** Upper bound of one dial, SOCKS handshake and tor reaching the onion included. Default 120 000 ms. */
  dialTimeoutMs?: number;
  /** Close a connection after this long without a byte either way; 0 = never. Default 120 000 ms. */
  inactivityTimeoutMs?: number;
}

export interface Onion3Components {
  logger: ComponentLogger;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 120_000;
export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 10_000;
export const DEFAULT_INACTIVITY_TIMEOUT_MS = 120_000;

export class Onion3Transport implements Transport {
  readonly [transportSymbol] = true;
  readonly [Symbol.toStringTag] = '@torplus/libp2p-onion3';
  readonly [serviceCapabilities]: string[] = ['@libp2p/transport'];

  private readonly init: Onion3Init;
  private readonly components: Onion3Components;
  private readonly log: Logger;
  private active: Onion3Listener | undefined;

  constructor(components: Onion3Components, init: Onion3Init = {}) {
    this.components = components;
    this.init = init;
    this.log = components.logger.forComponent('libp2p:onion3');
    for (const key of ['proxyHeaderTimeoutMs', 'dialTimeoutMs', 'inactivityTimeoutMs'] as const) {
      const v = init[key];
      if (v != null && !(Number.isFinite(v) && v >= 0)) throw new InvalidParametersError(`onion3: ${key} must be a number >= 0, not ${v}`);
    }
    const port = init.listen?.port;
    if (port != null && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new InvalidParametersError(`onion3: listen.port must be an integer in 0..65535 (0 = any free port), not ${port}`);
    }
  }

  async dial(ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const target = parseOnion3(ma);
    if (target == null) {
      throw new InvalidMultiaddrError(`onion3 cannot dial ${ma.toString()}: expected /onion3/<56-character v3 address>:<port>[/p2p/<peer id>]`);
    }
    options.signal.throwIfAborted();
    const proxy = await this.init.socks?.();
    if (proxy == null) {
      throw new NoSocksPortError(
        `onion3 cannot dial ${target.host}:${target.port}: no SOCKS port. Start tor with a SocksPort and return its host and port from onion3({ socks })`,
      );
    }
    this.log('dialing %s:%d through SOCKS %s:%d', target.host, target.port, proxy.host, proxy.port);
    const socket = await socksDial(proxy, target, {
      timeoutMs: this.init.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      signal: options.signal,
    });
    const maConn = new Onion3Connection({
      socket,
      remoteAddr: ma,
      direction: 'outbound',
      log: this.components.logger.forComponent('libp2p:onion3:connection'),
      inactivityTimeoutMs: this.init.inactivityTimeoutMs ?? DEFAULT_INACTIVITY_TIMEOUT_MS,
    });
    try {
      return await options.upgrader.upgradeOutbound(maConn, options);
    } catch (err) {
      this.log('upgrading the connection to %a failed - %e', ma, err);
      maConn.abort(err as Error);
      throw err;
    }
  }

  createListener(options: CreateListenerOptions): Listener {
    return new Onion3Listener({
      upgrader: options.upgrader,
      logger: this.components.logger,
      target: this.init.listen,
      proxyProtocol: this.init.proxyProtocol ?? false,
      proxyHeaderTimeoutMs: this.init.proxyHeaderTimeoutMs ?? DEFAULT_PROXY_HEADER_TIMEOUT_MS,
      inactivityTimeoutMs: this.init.inactivityTimeoutMs ?? DEFAULT_INACTIVITY_TIMEOUT_MS,
      claim: (listener) => {
        if (this.active != null && this.active !== listener) {
          throw new InvalidParametersError('onion3 listens on one /onion3 address per transport: the `listen` option names one local port');
        }
        this.active = listener;
      },
      release: (listener) => {
        if (this.active === listener) this.active = undefined;
      },
    });
  }

  /** Only `/onion3/<address>:<port>` (a trailing `/p2p/<own id>` is tolerated and dropped). */
  listenFilter(multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(isOnion3);
  }

  /** Only `/onion3/<address>:<port>`, optionally with `/p2p/<peer id>`. */
  dialFilter(multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(isOnion3);
  }
}
