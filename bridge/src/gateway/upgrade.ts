import { connect, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';

const STRIP = new Set(['forwarded', 'x-forwarded-for', 'x-real-ip', 'via']);

/**
 * WebSocket and other Upgrade requests: the request head is replayed to the upstream and the two
 * sockets are joined. Nothing is parsed after the upgrade; the tunnel lives until either side ends.
 */
export function tunnelUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, upstream: URL, onError?: (err: Error) => void): void {
  const up = connect({ host: upstream.hostname, port: Number(upstream.port || 80) });
  const fail = (err: Error) => {
    onError?.(err);
    if (!socket.destroyed && socket.writable && up.bytesRead === 0) {
      socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    } else socket.destroy();
    up.destroy();
  };
  up.once('error', fail);
  socket.once('error', () => up.destroy());
  up.once('connect', () => {
    let headText = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (STRIP.has(name.toLowerCase())) continue;
      headText += `${name}: ${req.rawHeaders[i + 1]}\r\n`;
    }
    up.write(headText + '\r\n');
    if (head.length > 0) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
    up.once('close', () => socket.destroy());
    socket.once('close', () => up.destroy());
  });
}
