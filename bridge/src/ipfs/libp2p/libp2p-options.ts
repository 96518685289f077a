import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { CreateLibp2pOptions } from '@helia/libp2p';
import { identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import type { Multiaddr } from '@multiformats/multiaddr';
import { isOnion3, onion3, onion3Multiaddr } from '../onion3/index.js';

export interface P2pNodeOptions {
  privateKey: PrivateKey;
  /** This bridge's onion address (56 characters + ".onion"), known before tor starts. */
  onion: string;
  /** The onion's virtual port for libp2p: IPFS_LISTEN_PORT, 4001 by default. */
  virtualPort: number;
  /** The loopback port tor's HiddenServicePort <virtualPort> forwards to. */
  localPort: number;
  /** Tor's SOCKS port, asked at each dial; undefined while tor is not up. */
  socks: () => Promise<{ host: string; port: number } | undefined>;
}

/**
 * libp2p for a bridge: onion3 is the only transport, so the node can neither listen on nor dial an IP
 * address, and announces only /onion3/<address>:<port>. Noise, yamux, identify (peers learn each
 * other's onion addresses from it) and ping (the connection monitor). No discovery, no DHT, no relay:
 * peers are named by onion address in PEERS and dialed by fill.
 */
export function bridgeLibp2pOptions(o: P2pNodeOptions): CreateLibp2pOptions {
  const onlyOnion3 = (addrs: Multiaddr[]) => addrs.filter((a) => isOnion3(a));
  return {
    privateKey: o.privateKey,
    addresses: {
      listen: [onion3Multiaddr(o.onion, o.virtualPort).toString()],
      announceFilter: onlyOnion3,
    },
    transports: [onion3({ socks: o.socks, listen: { host: '127.0.0.1', port: o.localPort }, proxyProtocol: true })],
    // libp2p's defaults (10 s a dial, 6 s an address) would abort most onion dials: a first circuit to
    // an onion takes seconds to tens of seconds.
    connectionManager: { dialTimeout: 120_000, addressDialTimeout: 120_000, inboundUpgradeTimeout: 60_000 },
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  };
}
