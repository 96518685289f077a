// Private-network detection (--is-testnet only on a private test network, never in production), the
// frontend tor's torrc, and onionbalance's command line.
import { renderBalanceTorrc } from './balance-torrc.js';
import { onionbalanceArgs } from './onionbalance-process.js';
import { isPrivateTestNetwork, testNetworkProblem } from './tor-network.js';

const fp = 'A'.repeat(40);
const privateNet = (voting = 20): string =>
  `TestingTorNetwork 1\nV3AuthVotingInterval ${voting}\nDirAuthority a1 orport=5001 no-v2 v3ident=${fp} 127.0.0.1:7001 ${fp}\n`;

describe('isPrivateTestNetwork', () => {
  test('TestingTorNetwork 1 as an active line, in any case, with a trailing comment', () => {
    expect(isPrivateTestNetwork(privateNet())).toBe(true);
    expect(isPrivateTestNetwork('  testingtornetwork 1   # the devnet\r\n')).toBe(true);
  });
  test('production: no extra config, an empty one, the option off, commented out or only mentioned', () => {
    expect(isPrivateTestNetwork(undefined)).toBe(false);
    expect(isPrivateTestNetwork('')).toBe(false);
    expect(isPrivateTestNetwork('TestingTorNetwork 0\n')).toBe(false);
    expect(isPrivateTestNetwork('# TestingTorNetwork 1\n')).toBe(false);
    expect(isPrivateTestNetwork('ContactInfo TestingTorNetwork 1\n')).toBe(false);
    expect(isPrivateTestNetwork('UseBridges 1\nBridge obfs4 192.0.2.1:443\n')).toBe(false);
  });
  test('a test network that does not vote every 20 s gets a warning', () => {
    expect(testNetworkProblem(privateNet(20))).toBeUndefined();
    expect(testNetworkProblem(privateNet(10))).toMatch(/votes every 10 s.*assumes 20 s/);
    expect(testNetworkProblem('TestingTorNetwork 1\n')).toMatch(/every \(unset\) s/);
    expect(testNetworkProblem(undefined)).toBeUndefined();
  });
});

describe('onionbalanceArgs', () => {
  const base = { controlPort: 9999, configFile: '/t/onionbalance/config.yaml', noSocket: '/t/onionbalance/no-control-socket' };
  test('--is-testnet only for a test network', () => {
    expect(onionbalanceArgs({ ...base, testnet: true })).toEqual([
      '--is-testnet', '-s', '/t/onionbalance/no-control-socket', '-i', '127.0.0.1', '-p', '9999', '-c', '/t/onionbalance/config.yaml', '-v', 'info',
    ]);
    expect(onionbalanceArgs({ ...base, testnet: false })).not.toContain('--is-testnet');
    expect(onionbalanceArgs({ ...base, testnet: false })[0]).toBe('-s');
  });
  test('a bad port is refused', () => {
    expect(() => onionbalanceArgs({ ...base, controlPort: 0, testnet: false })).toThrow(/control port/);
  });
});

describe('renderBalanceTorrc', () => {
  test('no hidden service, no SOCKS port, loopback control port with cookie auth, owned by us; the network from the extra config', () => {
    const text = renderBalanceTorrc({ dataDir: '/t/balance-tor/data', controlPortFile: '/t/balance-tor/control-port', ownerPid: 1234, extraConfig: privateNet() });
    const lines = text.split('\n');
    expect(lines).toEqual(expect.arrayContaining([
      'DataDirectory /t/balance-tor/data', 'ControlPort 127.0.0.1:auto', 'ControlPortWriteToFile /t/balance-tor/control-port',
      'CookieAuthentication 1', '__OwningControllerProcess 1234', 'SocksPort 0', 'TestingTorNetwork 1',
    ]));
    expect(text).not.toMatch(/^HiddenService/m);
    expect(text.trimEnd().endsWith(privateNet().trimEnd())).toBe(true);
  });
  test('paths tor would misread are quoted; bad values refused', () => {
    expect(renderBalanceTorrc({ dataDir: '/t/my tor#1', controlPortFile: '/p', ownerPid: 1 })).toContain('DataDirectory "/t/my tor#1"');
    expect(() => renderBalanceTorrc({ dataDir: '/t\nSocksPort 9050', controlPortFile: '/p', ownerPid: 1 })).toThrow(/CR, LF/);
    expect(() => renderBalanceTorrc({ dataDir: '/t', controlPortFile: '/p', ownerPid: 0 })).toThrow(/ownerPid/);
  });
});
