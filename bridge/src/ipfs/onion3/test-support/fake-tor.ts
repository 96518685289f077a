// Stands in for tor on loopback: a SOCKS5 port (CONNECT, no-auth or username/password) that
// routes `<address>.onion:<virtual port>` to the local target registered for that onion, and, for
// onions registered with `proxyProtocol`, writes the PROXY v1 line tor writes with
// `HiddenServiceExportCircuitID haproxy` before the stream's bytes. Nothing leaves 127.0.0.1.
import net, { type AddressInfo } from 'node:net';

/** What to do with the next CONNECT: connect it, refuse it with a SOCKS5 reply code, or never answer. */
export type SocksBehaviour = 'connect' | { reply: number } | 'hang';

export interface SocksConnect {
  /** SOCKS5 address type: 3 = a name (passed unresolved), 1 = IPv4, 4 = IPv6. */
  atyp: number;
  host: string;
  port: number;
  username: string | undefined;
}

interface OnionService {
  virtualPort: number;
  targetPort: number;
  proxyProtocol: boolean;
}

export class FakeTor {
  readonly server = net.createServer((s) => this.handle(s));
  readonly connects: SocksConnect[] = [];
  /** Behaviour of the next CONNECTs, consumed in order; then `fallback`. */
  script: SocksBehaviour[] = [];
  fallback: SocksBehaviour = 'connect';
  /** Circuit IDs handed out in PROXY lines, in order. */
  readonly circuits: number[] = [];
  private nextCircuit = 0x4a;
  private readonly services = new Map<string, OnionService>();
  private readonly sockets = new Set<net.Socket>();

  /** Like `HiddenServicePort <virtualPort> 127.0.0.1:<targetPort>` for `onion`. */
  addService(onion: string, virtualPort: number, targetPort: number, proxyProtocol = false): void {
    this.services.set(`${onion}.onion:${virtualPort}`, { virtualPort, targetPort, proxyProtocol });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open SOCKS client sockets and upstream sockets. */
  get openSockets(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  private handle(client: net.Socket): void {
    this.track(client);
    let buf = Buffer.alloc(0);
    let phase: 'greeting' | 'auth' | 'request' = 'greeting';
    let username: string | undefined;
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'greeting') {
        if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
        if (buf[0] !== 5) return void client.destroy();
        const methods = [...buf.subarray(2, 2 + buf[1]!)];
        buf = buf.subarray(2 + buf[1]!);
        phase = methods.includes(2) ? 'auth' : 'request';
        client.write(Buffer.from([5, methods.includes(2) ? 2 : 0]));
      }
      if (phase === 'auth') {
        if (buf.length < 2) return;
        const ulen = buf[1]!;
        if (buf.length < 3 + ulen || buf.length < 3 + ulen + buf[2 + ulen]!) return;
        username = buf.subarray(2, 2 + ulen).toString('latin1');
        buf = buf.subarray(3 + ulen + buf[2 + ulen]!);
        client.write(Buffer.from([1, 0]));
        phase = 'request';
      }
      if (buf.length < 5) return;
      const atyp = buf[3]!;
      if (atyp !== 3 && atyp !== 1) return void client.destroy();
      const end = atyp === 3 ? 5 + buf[4]! + 2 : 10;
      if (buf.length < end) return;
      const host = atyp === 3 ? buf.subarray(5, 5 + buf[4]!).toString('latin1') : [...buf.subarray(4, 8)].join('.');
      const port = buf.readUInt16BE(end - 2);
      const rest = buf.subarray(end);
      client.off('data', onData);
      this.connects.push({ atyp, host, port, username });
      const behaviour = this.script.shift() ?? this.fallback;
      if (behaviour === 'hang') return;
      const service = this.services.get(`${host}:${port}`);
      // 0x04 host unreachable: what tor answers for an onion it cannot reach.
      const reply = behaviour === 'connect' ? (service == null ? 4 : 0) : behaviour.reply;
      if (reply !== 0 || service == null) return void client.end(Buffer.from([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]));
      this.connectService(client, service, rest);
    };
    client.on('data', onData);
  }

  private connectService(client: net.Socket, service: OnionService, rest: Buffer): void {
    client.pause();
    const upstream = net.connect(service.targetPort, '127.0.0.1', () => {
      if (service.proxyProtocol) {
        const id = this.nextCircuit++;
        this.circuits.push(id);
        const hi = Math.floor(id / 0x10000).toString(16);
        const lo = (id % 0x10000).toString(16);
        upstream.write(`PROXY TCP6 fc00:dead:beef:4dad::${hi}:${lo} ::1 ${id % 0x10000} ${service.virtualPort}\r\n`);
      }
      client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    this.track(upstream);
    // Like tor: when one side goes, the other is closed after what is queued has been written.
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroySoon());
    client.on('close', () => upstream.destroySoon());
  }
}
