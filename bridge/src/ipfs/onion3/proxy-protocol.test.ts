import net, { type AddressInfo } from 'node:net';
import { MAX_PROXY_LINE, parseProxyLine, readProxyHeader } from './proxy-protocol.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('parseProxyLine', () => {
  it("reads the circuit ID from the last 32 bits of tor's source address", () => {
    const r = parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 4001\r\n/multistream/1.0.0\n'));
    expect(r).toEqual({ ok: true, circuitId: 0x4a, headerLength: 50 });
  });

  it('combines both 16-bit words, and accepts the written-out address form', () => {
    expect(parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad::ab:cdef ::1 65535 443\r\n'))).toMatchObject({ ok: true, circuitId: 0xabcdef });
    expect(parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad:0:0:1:2 ::1 1 80\r\n'))).toMatchObject({ ok: true, circuitId: 0x10002 });
  });

  it('asks for more bytes while the line is incomplete', () => {
    expect(parseProxyLine(b('PRO'))).toEqual({ ok: 'incomplete' });
    expect(parseProxyLine(b('PROXY TCP6 fc00:dead'))).toEqual({ ok: 'incomplete' });
  });

  it.each([
    ['plain data instead of a PROXY line', '/multistream/1.0.0\n'],
    ['no CRLF within the limit', 'PROXY TCP6 ' + 'f'.repeat(MAX_PROXY_LINE)],
    ['a line longer than 107 bytes', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80' + ' '.repeat(70) + '\r\n'],
    ['PROXY v1 over IPv4', 'PROXY TCP4 127.0.0.1 127.0.0.1 1 80\r\n'],
    ['UNKNOWN protocol', 'PROXY UNKNOWN\r\n'],
    ["a source outside tor's prefix", 'PROXY TCP6 fc00:dead:beef:4dae::0:4a ::1 74 80\r\n'],
    ['an invalid address', 'PROXY TCP6 fc00:dead:beef:4dad::zz ::1 74 80\r\n'],
    ['an embedded IPv4 address', 'PROXY TCP6 fc00:dead:beef:4dad::1.2.3.4 ::1 74 80\r\n'],
    ['a port out of range', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 65536\r\n'],
    ['a missing field', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74\r\n'],
    ['the PROXY v2 binary signature', '\r\n\r\n\x00\r\nQUIT\n'],
  ])('rejects %s', (_name, input) => {
    const r = parseProxyLine(b(input));
    expect(r.ok).toBe(false);
    expect((r as { reason: string }).reason.length).toBeGreaterThan(0);
  });
});

describe('readProxyHeader', () => {
  let server: net.Server;
  let accepted: Promise<net.Socket>;
  let port: number;

  beforeEach(async () => {
    let accept!: (s: net.Socket) => void;
    accepted = new Promise((r) => (accept = r));
    server = net.createServer((s) => accept(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await new Promise((r) => server.close(r));
  });

  async function pair(): Promise<{ client: net.Socket; inbound: net.Socket }> {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    const inbound = await accepted;
    return { client, inbound };
  }

  it('returns the circuit and the bytes after the line, and leaves the socket paused for the caller', async () => {
    const { client, inbound } = await pair();
    client.write('PROXY TCP6 fc00:dead:beef:4dad::0:7 ::1 7 4001\r\nhello');
    const header = await readProxyHeader(inbound, 1_000);
    expect(header.circuitId).toBe(7);
    expect(Buffer.from(header.rest).toString()).toBe('hello');
    expect(inbound.isPaused()).toBe(true);
    expect(inbound.listenerCount('data')).toBe(0);
    client.write(' world');
    inbound.on('data', (d) => expect(d.toString()).toBe(' world'));
    inbound.resume();
    await new Promise((r) => inbound.once('data', r));
    client.destroy();
    inbound.destroy();
  });

  it('rejects when the line is bad, when it does not come in time, and when the socket closes first', async () => {
    let { client, inbound } = await pair();
    client.write('SSH-2.0-OpenSSH\r\n');
    await expect(readProxyHeader(inbound, 1_000)).rejects.toThrow(/bad PROXY protocol line from tor/);
    client.destroy();
    inbound.destroy();

    accepted = new Promise((r) => server.once('connection', r));
    ({ client, inbound } = await pair());
    await expect(readProxyHeader(inbound, 100)).rejects.toThrow(/within 100 ms/);
    client.destroy();
    inbound.destroy();

    accepted = new Promise((r) => server.once('connection', r));
    ({ client, inbound } = await pair());
    client.end('PROXY TCP6');
    await expect(readProxyHeader(inbound, 1_000)).rejects.toThrow(/closed before its PROXY protocol line/);
    inbound.destroy();
  });
});
