// tor's PROXY protocol v1 line (HiddenServiceExportCircuitID haproxy): one parser for the whole
// bridge, the one the onion3 transport ships with (it is self-contained, so it owns the code).
export { MAX_PROXY_LINE, parseProxyLine, type ProxyLineResult } from '../ipfs/onion3/proxy-protocol.js';
