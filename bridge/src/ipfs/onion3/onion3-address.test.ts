import { multiaddr } from '@multiformats/multiaddr';
import {
  isOnion3,
  isOnion3Address,
  normaliseOnion3Address,
  onion3AddressFromPublicKey,
  onion3Multiaddr,
  parseOnion3,
} from './onion3-address.js';
import { Onion3Transport } from './transport.js';
import { components } from './test-support/stub-upgrader.js';

// Real, published v3 onion addresses: their checksums were computed by tor.
const DUCKDUCKGO = 'duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad';
const TORPROJECT = '2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid';
const PEER = '12D3KooWGzPFQQd5QhGQUm5Vu1u1nVtVyrjJAW2aG7PtMALeEoPu';

describe('onion3 addresses', () => {
  it('accepts real v3 addresses, with or without .onion, in either case', () => {
    for (const a of [DUCKDUCKGO, TORPROJECT, `${DUCKDUCKGO}.onion`, TORPROJECT.toUpperCase()]) {
      expect(isOnion3Address(a)).toBe(true);
    }
    expect(normaliseOnion3Address(`${TORPROJECT.toUpperCase()}.ONION`)).toBe(TORPROJECT);
  });

  it('rejects a mistyped address (checksum), a wrong length, and foreign characters', () => {
    const typo = DUCKDUCKGO.replace('gogg', 'goog');
    expect(isOnion3Address(typo)).toBe(false);
    expect(() => normaliseOnion3Address(typo)).toThrow(/wrong checksum or version/);
    expect(() => normaliseOnion3Address(DUCKDUCKGO.slice(1))).toThrow(/has 55 characters, a v3 address has 56/);
    expect(() => normaliseOnion3Address('expyuzz4wqqyqhjn')).toThrow(/16 characters/); // a v2 address
    expect(() => normaliseOnion3Address(DUCKDUCKGO.replace('d', '1'))).toThrow(/outside base32/);
    expect(isOnion3Address('')).toBe(false);
  });

  it('derives the address of a public key, as tor does', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const address = onion3AddressFromPublicKey(key);
    expect(address).toMatch(/^[a-z2-7]{55}d$/); // version 3 ends the address in "d"
    expect(isOnion3Address(address)).toBe(true);
    expect(onion3AddressFromPublicKey(new Uint8Array(32).fill(1))).not.toBe(address);
    expect(() => onion3AddressFromPublicKey(new Uint8Array(31))).toThrow(/32 bytes/);
  });

  it('builds /onion3 multiaddrs that encode to bytes', () => {
    const ma = onion3Multiaddr(`${DUCKDUCKGO.toUpperCase()}.onion`, 4001);
    expect(ma.toString()).toBe(`/onion3/${DUCKDUCKGO}:4001`);
    expect(ma.bytes.length).toBe(2 + 35 + 2); // code varint, address, port
    expect(() => onion3Multiaddr(DUCKDUCKGO, 0)).toThrow(/1..65535/);
    expect(() => onion3Multiaddr(DUCKDUCKGO, 65536)).toThrow(/1..65535/);
  });

  it('parses /onion3/<address>:<port>[/p2p/<id>] and nothing else', () => {
    expect(parseOnion3(multiaddr(`/onion3/${DUCKDUCKGO}:4001`))).toEqual({
      address: DUCKDUCKGO,
      host: `${DUCKDUCKGO}.onion`,
      port: 4001,
    });
    expect(parseOnion3(multiaddr(`/onion3/${DUCKDUCKGO}:80/p2p/${PEER}`))).toMatchObject({ port: 80, peerId: PEER });
    for (const bad of [
      '/ip4/127.0.0.1/tcp/4001',
      '/ip6/::1/tcp/4001',
      '/dns4/example.com/tcp/4001',
      '/onion/expyuzz4wqqyqhjn:80',
      `/onion3/${DUCKDUCKGO}:4001/ws`,
      `/onion3/${DUCKDUCKGO}:4001/p2p/${PEER}/p2p-circuit`,
      `/onion3/${DUCKDUCKGO.replace('gogg', 'goog')}:4001`,
      `/onion3/${DUCKDUCKGO}:65536`,
      `/ip4/127.0.0.1/tcp/1/onion3/${DUCKDUCKGO}:4001`,
    ]) {
      expect([bad, isOnion3(multiaddr(bad))]).toEqual([bad, false]);
    }
  });

  it('the transport listens on and dials only what parses', () => {
    const t = new Onion3Transport(components, {});
    const good = [multiaddr(`/onion3/${DUCKDUCKGO}:4001`), multiaddr(`/onion3/${TORPROJECT}:443/p2p/${PEER}`)];
    const bad = [
      multiaddr('/ip4/127.0.0.1/tcp/4001'),
      multiaddr('/ip6/::1/tcp/4001'),
      multiaddr('/dns/localhost/tcp/4001'),
      multiaddr(`/onion3/${DUCKDUCKGO}:4001/tls/ws`),
      multiaddr(`/onion3/${DUCKDUCKGO}:4001/p2p/${PEER}/p2p-circuit`),
    ];
    expect(t.dialFilter([...bad, ...good])).toEqual(good);
    expect(t.listenFilter([...bad, ...good])).toEqual(good);
  });
});
