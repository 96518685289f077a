// A TCP socket (to tor's SOCKS port, or from tor to our HiddenServicePort target) as a libp2p 3
// MultiaddrConnection: a message stream the upgrader runs Noise and yamux over.
// Modelled on @libp2p/tcp's socket-to-conn.
import type { Socket } from 'node:net';
import { TimeoutError, type Logger, type MessageStreamDirection } from '@libp2p/interface';
import { AbstractMultiaddrConnection } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';

export interface Onion3ConnectionInit {
  socket: Socket;
  remoteAddr: Multiaddr;
  direction: MessageStreamDirection;
  log: Logger;
  /** Close the connection after this long without traffic either way; 0 = never. */
  inactivityTimeoutMs: number;
  /** Bytes already read from the socket that belong to the stream (after a PROXY line). */
  head?: Uint8Array;
  /** tor's circuit ID for an inbound stream, from its PROXY line. */
  circuitId?: number;
}

// Keyed by the connection and by its timeline object, which libp2p's Connection shares with the
// MultiaddrConnection it was upgraded from: so the ID can be found from either.
const circuits = new WeakMap<object, number>();

/** The byte list type of sendData (from uint8arraylist, which is not a direct dependency). */
type ByteList = Parameters<AbstractMultiaddrConnection['sendData']>[0];

/**
 * The tor circuit ID of an inbound connection accepted with `proxyProtocol: true`, given the
 * MultiaddrConnection or the libp2p Connection upgraded from it. undefined for outbound connections,
 * without `proxyProtocol`, and for connections of other transports.
 */
export function circuitIdOf(connection: { timeline?: object }): number | undefined {
  return circuits.get(connection) ?? (connection.timeline != null ? circuits.get(connection.timeline) : undefined);
}

export class Onion3Connection extends AbstractMultiaddrConnection {
  readonly socket: Socket;
  /** See circuitIdOf(). */
  readonly circuitId: number | undefined;

  constructor(init: Onion3ConnectionInit) {
    super({
      remoteAddr: init.remoteAddr,
      direction: init.direction,
      log: init.log,
      inactivityTimeout: init.inactivityTimeoutMs,
    });
    const { socket } = init;
    this.socket = socket;
    this.circuitId = init.circuitId;
    if (init.circuitId != null) {
      circuits.set(this, init.circuitId);
      circuits.set(this.timeline, init.circuitId);
    }

    socket.on('data', (buf: Buffer) => this.onData(buf));
    socket.on('error', (err) => {
      this.log('socket error - %e', err);
      this.abort(err);
    });
    if (init.inactivityTimeoutMs > 0) {
      socket.setTimeout(init.inactivityTimeoutMs);
      socket.once('timeout', () => {
        this.log('idle for %d ms, closing', init.inactivityTimeoutMs);
        this.abort(new TimeoutError(`onion3 connection idle for ${init.inactivityTimeoutMs} ms`));
      });
    }
    // The remote sent FIN: with allowHalfOpen off, Node ends our side too and then emits 'close'.
    socket.once('end', () => this.onTransportClosed());
    socket.once('close', (hadError) => {
      if (hadError) this.abort(new Error('onion3 socket closed after a transmission error'));
      else this.onTransportClosed();
    });
    socket.on('drain', () => this.safeDispatchEvent('drain'));

    if (init.head != null && init.head.byteLength > 0) this.onData(init.head);
  }

  sendData(data: ByteList): { sentBytes: number; canSendMore: boolean } {
    let sentBytes = 0;
    let canSendMore = true;
    for (const buf of data) {
      sentBytes += buf.byteLength;
      canSendMore = this.socket.write(buf);
      if (!canSendMore) break;
    }
    return { sentBytes, canSendMore };
  }

  async sendClose(options?: { signal?: AbortSignal }): Promise<void> {
    const { socket } = this;
    if (socket.destroyed) return;
    const closed = new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        socket.destroy();
        reject(options?.signal?.reason ?? new Error('aborted'));
      };
      socket.once('close', () => {
        options?.signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      options?.signal?.addEventListener('abort', onAbort, { once: true });
    });
    // Flush what is queued, send FIN, then destroy.
    socket.destroySoon();
    await closed;
  }

  sendReset(): void {
    const { socket } = this;
    if (socket.destroyed) return;
    // resetAndDestroy() (an RST) cannot follow end(), which destroySoon() may have called.
    if (socket.writableEnded) socket.destroy();
    else socket.resetAndDestroy();
  }

  sendPause(): void {
    this.socket.pause();
  }

  sendResume(): void {
    this.socket.resume();
  }
}
