import { createServer, type Server, type Socket } from 'node:net';
import { parseProxyLine } from './proxy-protocol.js';
import { tagSocket } from './visitor.js';

export interface OnionListenerOptions {
  /** Receives each connection once its PROXY line is read and the socket tagged with the visitor. */
  onConnection(socket: Socket): void;
  /** A connection must send its PROXY line within this time. tor sends it at once. */
  headerTimeoutMs?: number;
  onReject?(reason: string): void;
  /** The connection is handed to a TLS server: it is left paused (see below). */
  tls?: boolean;
}

/**
 * The loopback listener that tor's `HiddenServicePort` points at. Every connection must start
 * with tor's PROXY line; one that does not is closed, and nothing else is affected.
 */
export function createOnionListener(opts: OnionListenerOptions): Server {
  const timeoutMs = opts.headerTimeoutMs ?? 5000;
  return createServer({ noDelay: true }, (socket) => {
    let buf: Buffer = Buffer.alloc(0);
    const reject = (reason: string) => {
      cleanup();
      opts.onReject?.(reason);
      socket.destroy();
    };
    const timer = setTimeout(() => reject('no PROXY line in time'), timeoutMs);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyLine(buf);
      if (r.ok === 'incomplete') return;
      if (r.ok === false) return reject(r.reason);
      cleanup();
      socket.pause();
      const rest = buf.subarray(r.headerLength);
      if (rest.length > 0) socket.unshift(rest);
      tagSocket(socket, { kind: 'circuit', circuitId: r.circuitId });
      opts.onConnection(socket);
      // A TLS socket made on this one reads from the native handle and takes the pushed-back bytes
      // (the start of the ClientHello) itself; resuming here would hand them to nobody.
      if (!opts.tls) socket.resume();
    };
    const onEnd = () => reject('closed before the PROXY line');
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', cleanup);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', cleanup);
  });
}
