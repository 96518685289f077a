// A minimal SOCKS5 server (CONNECT only; no-auth or username/password, which it records) that sends every
// stream to a local port chosen by `route(host, port)`. Stands in for tor's SocksPort in the client's tests
// and in bridge/test/socks-http.test.ts (devnet/socks-http.ts), which also script it to refuse or hang.
import net, { type AddressInfo } from 'node:net';

/** What the stand-in does with a CONNECT request: connect it, refuse it (host unreachable), or never answer. */
export type SocksBehaviour = 'connect' | 'reject' | 'hang';

export interface SocksConnect {
  /** 3 = a domain name (passed unresolved), 1 = IPv4, 4 = IPv6. */
  atyp: number;
  host: string;
  port: number;
  /** The SOCKS5 username, if the client authenticated. */
  username: string | undefined;
}

export class SocksStandIn {
  readonly server: net.Server;
  /** Each CONNECT request, in order. */
  readonly connects: SocksConnect[] = [];
  /** Protocol errors from clients (a greeting that is not SOCKS5); such a client is disconnected. */
  readonly errors: string[] = [];
  /** Behaviour for the next requests, consumed in order; then `fallback`. */
  script: SocksBehaviour[] = [];
  fallback: SocksBehaviour = 'connect';
  private readonly sockets = new Set<net.Socket>();
  private readonly route: (host: string, port: number) => number;

  constructor(route: (host: string, port: number) => number) {
    this.route = route;
    this.server = net.createServer((s) => this.handle(s));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => {});
    let buf = Buffer.alloc(0);
    let phase: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    let username: string | undefined;
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'greeting') {
        if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
        if (buf[0] !== 5) {
          this.errors.push(`greeting with SOCKS version ${buf[0]}`);
          return void client.destroy();
        }
        const methods = [...buf.subarray(2, 2 + buf[1]!)];
        buf = buf.subarray(2 + buf[1]!);
        if (methods.includes(2)) {
          client.write(Buffer.from([5, 2]));
          phase = 'auth';
        } else {
          client.write(Buffer.from([5, 0]));
          phase = 'request';
        }
      }
      if (phase === 'auth') {
        if (buf.length < 2) return;
        const ulen = buf[1]!;
        if (buf.length < 2 + ulen + 1) return;
        const plen = buf[2 + ulen]!;
        if (buf.length < 3 + ulen + plen) return;
        username = buf.subarray(2, 2 + ulen).toString('latin1');
        buf = buf.subarray(3 + ulen + plen);
        client.write(Buffer.from([1, 0]));
        phase = 'request';
      }
      if (phase === 'request') {
        if (buf.length < 5) return;
        const atyp = buf[3]!;
        let host: string;
        let end: number;
        if (atyp === 3) {
          end = 5 + buf[4]! + 2;
          if (buf.length < end) return;
          host = buf.subarray(5, 5 + buf[4]!).toString('latin1');
        } else if (atyp === 1) {
          end = 10;
          if (buf.length < end) return;
          host = [...buf.subarray(4, 8)].join('.');
        } else {
          return void client.destroy();
        }
        const port = buf.readUInt16BE(end - 2);
        const rest = buf.subarray(end);
        phase = 'done';
        client.off('data', onData);
        this.connects.push({ atyp, host, port, username });
        const behaviour = this.script.shift() ?? this.fallback;
        if (behaviour === 'hang') return;
        if (behaviour === 'reject') {
          // 0x04: host unreachable, what tor answers when it cannot reach an onion.
          client.end(Buffer.from([5, 4, 0, 1, 0, 0, 0, 0, 0, 0]));
          return;
        }
        const upstream = net.connect(this.route(host, port), '127.0.0.1', () => {
          client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          if (rest.length) upstream.write(rest);
          client.pipe(upstream);
          upstream.pipe(client);
        });
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        this.sockets.add(upstream);
        upstream.on('close', () => this.sockets.delete(upstream));
      }
    };
    client.on('data', onData);
  }
}
