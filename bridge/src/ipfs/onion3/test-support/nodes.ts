// libp2p nodes that speak only /onion3, through a FakeTor on loopback.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { ping, type Ping } from '@libp2p/ping';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { onion3, type Onion3Init } from '../index.js';
import { onion3Multiaddr } from '../onion3-address.js';
import type { FakeTor } from './fake-tor.js';
import { fakeOnion } from './fake-onion.js';

export const VIRTUAL_PORT = 4001;

export type Services = { identify: Identify; ping: Ping };

export interface TestNode {
  node: Libp2p<Services>;
  onion: string;
  /** `/onion3/<onion>:4001`. */
  addr: Multiaddr;
  /** The local TCP port tor forwards to. */
  localPort: number;
}

/** The onion3 transport options a node of `tor` uses; `listen` is filled in by startNode. */
export function transportOptions(tor: FakeTor, extra: Partial<Onion3Init> = {}): Onion3Init {
  return { socks: () => ({ host: '127.0.0.1', port: tor.port }), ...extra };
}

/** Starts a node listening as a fresh fake onion, registered with `tor`. */
export async function startNode(tor: FakeTor, extra: Partial<Onion3Init> = {}): Promise<TestNode> {
  const onion = fakeOnion();
  let localPort = 0;
  const node = await createLibp2p({
    transports: [
      onion3({
        ...transportOptions(tor, extra),
        listen: { port: 0, onListening: (info) => (localPort = info.port) },
      }),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
    addresses: { listen: [onion3Multiaddr(onion, VIRTUAL_PORT).toString()] },
  });
  if (localPort === 0) throw new Error('onListening was not called');
  tor.addService(onion, VIRTUAL_PORT, localPort, extra.proxyProtocol ?? false);
  return { node, onion, addr: onion3Multiaddr(onion, VIRTUAL_PORT), localPort };
}

/** A node that only dials. */
export async function startDialer(tor: FakeTor, extra: Partial<Onion3Init> = {}): Promise<Libp2p<Services>> {
  return createLibp2p({
    transports: [onion3(transportOptions(tor, extra))],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  });
}
