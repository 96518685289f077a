// The local TCP target of tor's `HiddenServicePort <virtual port> <host>:<port>`. Each stream tor
// forwards becomes an inbound MultiaddrConnection (after its PROXY line, with `proxyProtocol`).
// The only address this listener reports is the onion's: never the local host and port.
import net, { type AddressInfo, type Socket } from 'node:net';
import {
  AlreadyStartedError,
  InvalidParametersError,
  ListenError,
  TypedEventEmitter,
  setMaxListeners,
  type ComponentLogger,
  type Listener,
  type ListenerEvents,
  type Logger,
  type Upgrader,
} from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { Onion3Connection } from './connection.js';
import { onion3Multiaddr, parseOnion3 } from './onion3-address.js';
import { readProxyHeader } from './proxy-protocol.js';

/** Where tor forwards the onion's streams to, and what the listener reports once bound. */
export interface Onion3ListenTarget {
  /** Interface to bind; default 127.0.0.1. Keep it on loopback: anyone who can connect here reaches the node. */
  host?: string;
  /** TCP port to bind; 0 picks a free one, reported to onListening (for tor's HiddenServicePort). */
  port: number;
  /** Called once bound, with the onion address announced and the local address tor must forward to. */
  onListening?: (info: { onion: Multiaddr; host: string; port: number }) => void;
}

export interface Onion3ListenerInit {
  upgrader: Upgrader;
  logger: ComponentLogger;
  target: Onion3ListenTarget | undefined;
  proxyProtocol: boolean;
  proxyHeaderTimeoutMs: number;
  inactivityTimeoutMs: number;
  /** Called on listen and close, so the transport can allow a single active listener. */
  claim: (listener: Onion3Listener) => void;
  release: (listener: Onion3Listener) => void;
}

export class Onion3Listener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private readonly init: Onion3ListenerInit;
  private readonly log: Logger;
  private readonly sockets = new Set<Socket>();
  private shutdown = new AbortController();
  private server: net.Server | undefined;
  private onion: Multiaddr | undefined;

  constructor(init: Onion3ListenerInit) {
    super();
    this.init = init;
    this.log = init.logger.forComponent('libp2p:onion3:listener');
  }

  async listen(ma: Multiaddr): Promise<void> {
    if (this.server != null) throw new AlreadyStartedError('onion3 listener is already listening');
    const parsed = parseOnion3(ma);
    if (parsed == null) {
      throw new InvalidParametersError(`onion3 cannot listen on ${ma.toString()}: expected /onion3/<56-character v3 address>:<virtual port>`);
    }
    const target = this.init.target;
    if (target == null) {
      throw new InvalidParametersError(
        `onion3 cannot listen on ${ma.toString()}: no \`listen\` option, the local TCP port tor's HiddenServicePort forwards to`,
      );
    }
    const onion = onion3Multiaddr(parsed.address, parsed.port);
    const host = target.host ?? '127.0.0.1';
    this.init.claim(this);
    const server = net.createServer({ noDelay: true, keepAlive: true, allowHalfOpen: false }, (s) => this.onSocket(s));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port: target.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.init.release(this);
      throw new ListenError(`onion3 cannot bind ${host}:${target.port}, the target of the HiddenServicePort for ${onion.toString()}: ${(err as Error).message}`);
    }
    server.on('error', (err) => this.safeDispatchEvent('error', { detail: err }));
    this.server = server;
    this.onion = onion;
    this.shutdown = new AbortController();
    setMaxListeners(Infinity, this.shutdown.signal);
    const bound = server.address() as AddressInfo;
    this.log('listening on %s:%d for %a', bound.address, bound.port, onion);
    try {
      target.onListening?.({ onion, host: bound.address, port: bound.port });
    } catch (err) {
      await this.close();
      throw err;
    }
    this.safeDispatchEvent('listening');
  }

  /** Only the onion address: the local TCP address is tor's business, never announced. */
  getAddrs(): Multiaddr[] {
    return this.onion != null && this.server != null ? [this.onion] : [];
  }

  /** The bound local address tor must forward to, or undefined before listen(). */
  localAddress(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a != null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  updateAnnounceAddrs(): void {}

  async close(): Promise<void> {
    const server = this.server;
    if (server == null) return;
    this.server = undefined;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.shutdown.abort();
    const socketsClosed = [...this.sockets].map((s) => {
      if (s.closed) return Promise.resolve();
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.destroy();
      return closed;
    });
    await Promise.all([serverClosed, ...socketsClosed]);
    this.init.release(this);
    this.log('closed');
    this.safeDispatchEvent('close');
  }

  private onSocket(socket: Socket): void {
    if (this.server == null || this.onion == null) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Errors before the connection object takes over (it adds its own handler) must not crash the node.
    socket.on('error', (err) => this.log('inbound socket error - %e', err));
    if (!this.init.proxyProtocol) {
      this.upgrade(socket, undefined);
      return;
    }
    readProxyHeader(socket, this.init.proxyHeaderTimeoutMs).then(
      (header) => {
        this.upgrade(socket, header);
        // readProxyHeader left it paused; the connection listens now.
        socket.resume();
      },
      (err: Error) => {
        this.log('closing inbound stream: %s', err.message);
        socket.destroy();
      },
    );
  }

  private upgrade(socket: Socket, header: { circuitId: number; rest: Uint8Array } | undefined): void {
    // Closed meanwhile (listener shut down, or tor dropped the stream): its 'close' has been emitted.
    if (socket.destroyed || this.onion == null) {
      socket.destroy();
      return;
    }
    const maConn = new Onion3Connection({
      socket,
      // tor does not say who dialed: the honest address is the one the stream arrived at.
      remoteAddr: this.onion,
      direction: 'inbound',
      log: this.init.logger.forComponent('libp2p:onion3:connection'),
      inactivityTimeoutMs: this.init.inactivityTimeoutMs,
      ...(header != null ? { head: header.rest, circuitId: header.circuitId } : {}),
    });
    this.log('inbound connection%s', header != null ? ` on circuit ${header.circuitId}` : '');
    this.init.upgrader.upgradeInbound(maConn, { signal: this.shutdown.signal }).catch((err: Error) => {
      this.log('inbound upgrade failed - %e', err);
      maConn.abort(err);
    });
  }
}
