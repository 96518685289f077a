/**
 * A libp2p 3 transport for `/onion3/<address>:<port>` multiaddrs: dials onion services through
 * tor's SOCKS5 port and accepts the streams tor forwards from this node's own onion service.
 * See README.md. Self-contained: depends only on libp2p packages, `socks` and Node.
 */
import type { Transport } from '@libp2p/interface';
import { Onion3Transport, type Onion3Components, type Onion3Init } from './transport.js';

export function onion3(init: Onion3Init = {}): (components: Onion3Components) => Transport {
  return (components) => new Onion3Transport(components, init);
}

export {
  Onion3Transport,
  DEFAULT_DIAL_TIMEOUT_MS,
  DEFAULT_INACTIVITY_TIMEOUT_MS,
  DEFAULT_PROXY_HEADER_TIMEOUT_MS,
  type Onion3Components,
  type Onion3Init,
} from './transport.js';
export type { Onion3ListenTarget } from './listener.js';
export type { SocksEndpoint } from './socks-dial.js';
export { circuitIdOf } from './connection.js';
export { NoSocksPortError, OnionUnreachableError, SocksProxyError } from './errors.js';
export {
  ONION3_CODE,
  isOnion3,
  isOnion3Address,
  normaliseOnion3Address,
  onion3AddressFromPublicKey,
  onion3Multiaddr,
  parseOnion3,
  type Onion3Target,
} from './onion3-address.js';
export { MAX_PROXY_LINE, parseProxyLine, type ProxyLineResult } from './proxy-protocol.js';
