import { MAX_PROXY_LINE, parseProxyLine } from './proxy-protocol.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('parseProxyLine', () => {
  it('reads the circuit ID from the last 32 bits of tor\'s source address', () => {
    const r = parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80\r\nGET / HTTP/1.1\r\n'));
    expect(r).toEqual({ ok: true, circuitId: 0x4a, headerLength: 48 });
  });

  it('combines both 16-bit words of large circuit IDs', () => {
    const r = parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad::ab:cdef ::1 65535 443\r\n'));
    expect(r).toMatchObject({ ok: true, circuitId: 0xabcdef });
  });

  it('accepts the fully written-out form of the address', () => {
    const r = parseProxyLine(b('PROXY TCP6 fc00:dead:beef:4dad:0:0:1:2 ::1 1 80\r\n'));
    expect(r).toMatchObject({ ok: true, circuitId: 0x10002 });
  });

  it('asks for more bytes while the line is incomplete', () => {
    expect(parseProxyLine(b('PRO'))).toEqual({ ok: 'incomplete' });
    expect(parseProxyLine(b('PROXY TCP6 fc00:dead'))).toEqual({ ok: 'incomplete' });
  });

  it.each([
    ['plain HTTP instead of a PROXY line', 'GET / HTTP/1.1\r\n'],
    ['garbage before CRLF', 'HELLO\r\n'],
    ['no CRLF within the limit', 'PROXY TCP6 ' + 'f'.repeat(MAX_PROXY_LINE)],
    ['a line longer than 107 bytes', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80' + ' '.repeat(70) + '\r\n'],
    ['PROXY v1 over IPv4', 'PROXY TCP4 127.0.0.1 127.0.0.1 1 80\r\n'],
    ['UNKNOWN protocol', 'PROXY UNKNOWN\r\n'],
    ['a source that is not tor\'s prefix', 'PROXY TCP6 fc00:dead:beef:4dae::0:4a ::1 74 80\r\n'],
    ['an ordinary IPv6 source', 'PROXY TCP6 2001:db8::1 ::1 74 80\r\n'],
    ['an invalid address', 'PROXY TCP6 fc00:dead:beef:4dad::zz ::1 74 80\r\n'],
    ['an embedded IPv4 address', 'PROXY TCP6 fc00:dead:beef:4dad::1.2.3.4 ::1 74 80\r\n'],
    ['a port out of range', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 65536\r\n'],
    ['a port with a sign', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 -1 80\r\n'],
    ['a missing field', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74\r\n'],
    ['an extra field', 'PROXY TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80 9\r\n'],
    ['double spaces', 'PROXY  TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80\r\n'],
    ['the PROXY v2 binary signature', '\r\n\r\n\x00\r\nQUIT\n'],
    ['lower-case keyword', 'proxy TCP6 fc00:dead:beef:4dad::0:4a ::1 74 80\r\n'],
  ])('rejects %s', (_name, input) => {
    const r = parseProxyLine(b(input));
    expect(r.ok).toBe(false);
    expect((r as { reason: string }).reason.length).toBeGreaterThan(0);
  });
});
