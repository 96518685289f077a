import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));

describe('loadConfig', () => {
  it('applies the documented defaults, resolved against the working directory', () => {
    const c = loadConfig({}, cwd);
    expect(c.paths).toEqual({
      www: join(cwd, 'www'),
      tor: join(cwd, 'tor'),
      data: join(cwd, 'data'),
      ssl: join(cwd, 'ssl_torplus'),
    });
    expect(c.httpPort).toBe(80);
    expect(c.apiPort).toBe(8000);
    expect(c.upstream).toBeUndefined();
    expect(c.tor.powDefense).toBe(true);
    expect(c.logLevel).toBe('info');
  });

  it('reads typed values from the environment', () => {
    const c = loadConfig({ HTTP_PORT: '8080', UPSTREAM_URL: 'http://web:8080', DOMAIN: 'Example.COM', TOR_POW_DEFENSE: '0' }, cwd);
    expect(c.httpPort).toBe(8080);
    expect(c.upstream?.host).toBe('web:8080');
    expect(c.domain).toBe('example.com');
    expect(c.tor.powDefense).toBe(false);
  });

  it('reads .env, and the environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-env-'));
    writeFileSync(join(dir, '.env'), 'HTTP_PORT=81\nAPI_PORT=9001\n# comment\n');
    const c = loadConfig({ API_PORT: '9002' }, dir);
    expect(c.httpPort).toBe(81);
    expect(c.apiPort).toBe(9002);
  });

  it.each([
    ['HTTP_PORT', 'abc', /^HTTP_PORT: expected .*port/],
    ['HTTP_PORT', '70000', /^HTTP_PORT: expected a port from 0 to 65535/],
    ['API_PORT', '1.5', /^API_PORT: expected a whole/],
    ['UPSTREAM_URL', 'web:80', /^UPSTREAM_URL: expected an http:\/\/ URL/],
    ['UPSTREAM_URL', 'https://web/path', /^UPSTREAM_URL: expected an http:\/\/ URL with host and port only/],
    ['DOMAIN', 'https://example.com/', /^DOMAIN: expected a domain name/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL: expected error, warn, info or debug/],
    ['TOR_POW_DEFENSE', 'maybe', /^TOR_POW_DEFENSE: expected true or false/],
    ['TOR_EXTRA_CONFIG', '/nonexistent/torrc', /^TOR_EXTRA_CONFIG: expected the path of a readable file/],
  ])('rejects %s=%s with one line naming the variable', (name, value, pattern) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value }, cwd);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(pattern);
    expect((caught as Error).message).not.toContain('\n');
  });
});

describe('payment settings', () => {
  const SEED = 'SCZANGBA5YHTNYVVV4C3U252E2B6P6F5T3U6MM63WBSBZATAQI3EBTQ4';

  it('keeps the seed as a Secret that prints as [redacted]', () => {
    const c = loadConfig({ seed: SEED }, cwd);
    expect(c.payments.seed?.reveal()).toBe(SEED);
    expect(String(c.payments.seed)).toBe('[redacted]');
    expect(JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(SEED);
  });

  it('never echoes a bad seed in the error', () => {
    const bad = SEED.slice(0, -1) + 'X';
    expect(() => loadConfig({ seed: bad }, cwd)).toThrow(/^seed: expected a Stellar secret seed/);
    try {
      loadConfig({ seed: bad }, cwd);
    } catch (err) {
      expect((err as Error).message).not.toContain(bad);
    }
  });

  it('reads SEED_FILE only when it is private to its owner', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-seed-'));
    const file = join(dir, 'seed');
    writeFileSync(file, SEED + '\n', { mode: 0o644 });
    expect(() => loadConfig({ SEED_FILE: file }, cwd)).toThrow(/^SEED_FILE: expected a file only its owner can read/);
    chmodSync(file, 0o600);
    expect(loadConfig({ SEED_FILE: file }, cwd).payments.seed?.reveal()).toBe(SEED);
    writeFileSync(file, 'not a seed');
    expect(() => loadConfig({ SEED_FILE: file }, cwd)).toThrow(/^SEED_FILE: expected the file .* to hold a Stellar secret seed/);
  });

  it('maps PP_ENV to a network: prod is public, local needs HORIZON_URL, anything else is testnet', () => {
    expect(loadConfig({ PP_ENV: 'prod' }, cwd).payments).toMatchObject({ network: 'public', horizonUrl: 'https://horizon.stellar.org' });
    expect(loadConfig({}, cwd).payments.network).toBe('testnet');
    expect(loadConfig({ PP_ENV: 'staging' }, cwd).payments.network).toBe('testnet');
    expect(() => loadConfig({ PP_ENV: 'local' }, cwd)).toThrow(/^HORIZON_URL: expected the URL of the local ledger/);
    expect(loadConfig({ PP_ENV: 'local', HORIZON_URL: 'http://127.0.0.1:9' }, cwd).payments).toMatchObject({ network: 'local', passphrase: undefined });
  });

  it('parses prices as exact stroops', () => {
    expect(loadConfig({ PRICE_PER_MIB: '0.0000001' }, cwd).payments.pricePerMibStroops).toBe(1n);
    expect(loadConfig({ PRICE_PER_MIB: '12.5' }, cwd).payments.pricePerMibStroops).toBe(125_000_000n);
    expect(() => loadConfig({ PRICE_PER_MIB: '0.00000001' }, cwd)).toThrow(/^PRICE_PER_MIB: expected an amount of XLM/);
    expect(() => loadConfig({ PRICE_PER_MIB: '-1' }, cwd)).toThrow(/^PRICE_PER_MIB:/);
  });
});

describe('IPFS settings', () => {
  const A = 'a'.repeat(56);
  const B = 'b2'.repeat(28);

  it('defaults to a node under DATA_DIR/ipfs with 3 versions, a 1 GiB reserve and no peers', () => {
    const c = loadConfig({ DATA_DIR: 'state' }, cwd).ipfs;
    expect(c).toMatchObject({ enabled: true, dir: join(cwd, 'state', 'ipfs'), keepVersions: 3, peers: [], fillReserveBytes: 1024 ** 3, fillTopN: 10 });
    expect(c.fillIntervalMs).toBe(3600_000);
  });

  it('reads PEERS as onion addresses, with or without .onion, once each', () => {
    expect(loadConfig({ PEERS: `${A}.onion, ${B}\n${A}` }, cwd).ipfs.peers).toEqual([`${A}.onion`, `${B}.onion`]);
    expect(() => loadConfig({ PEERS: `${A}.onion,example.com` }, cwd)).toThrow(/^PEERS: expected v3 onion addresses.*"example\.com" is not one/);
  });

  it.each([
    ['1073741824', 1024 ** 3],
    ['500M', 500 * 1024 ** 2],
    ['2GiB', 2 * 1024 ** 3],
    ['64kb', 64 * 1024],
  ])('reads FILL_RESERVE_BYTES=%s as %d bytes', (v, bytes) => {
    expect(loadConfig({ FILL_RESERVE_BYTES: v }, cwd).ipfs.fillReserveBytes).toBe(bytes);
  });

  it('rejects a size it cannot read, and too few versions', () => {
    expect(() => loadConfig({ FILL_RESERVE_BYTES: 'lots' }, cwd)).toThrow(/^FILL_RESERVE_BYTES: expected a size in bytes/);
    expect(() => loadConfig({ IPFS_KEEP_VERSIONS: '0' }, cwd)).toThrow(/^IPFS_KEEP_VERSIONS: expected at least 1/);
  });
});

describe('IPFS peer settings (libp2p and bitswap payments)', () => {
  it('defaults: port 4001, 50 MiB free, the site price, 32 KiB/s throttled, fill spends at most 1 XLM', () => {
    const c = loadConfig({}, cwd);
    expect(c.ipfs).toMatchObject({ listenPort: 4001, freeBytes: 50 * 1024 ** 2, throttleBytesPerSec: 32 * 1024, fillMaxSpendStroops: 10_000_000n });
    expect(c.payments.ipfsPricePerMibStroops).toBeUndefined();
  });

  it('reads IPFS_PRICE_PER_MIB as exact stroops and rejects nonsense', () => {
    expect(loadConfig({ IPFS_PRICE_PER_MIB: '0.0002' }, cwd).payments.ipfsPricePerMibStroops).toBe(2000n);
    expect(() => loadConfig({ IPFS_PRICE_PER_MIB: 'cheap' }, cwd)).toThrow(/^IPFS_PRICE_PER_MIB: expected an amount of XLM/);
    expect(() => loadConfig({ FILL_MAX_SPEND: '-2' }, cwd)).toThrow(/^FILL_MAX_SPEND:/);
    expect(loadConfig({ IPFS_FREE_BYTES: '100000' }, cwd).ipfs.freeBytes).toBe(100_000);
  });
});

describe('IPFS_LIBP2P', () => {
  it('is on by default and can be turned off', () => {
    expect(loadConfig({}, cwd).ipfs.libp2p).toBe(true);
    expect(loadConfig({ IPFS_LIBP2P: 'false' }, cwd).ipfs.libp2p).toBe(false);
  });
});

describe('TLS and DNS settings', () => {
  it('serves HTTPS on 443 and runs no ACME without ACME_EMAIL; uses the system resolvers without DNS_SERVERS', () => {
    const c = loadConfig({}, cwd);
    expect(c.tls).toEqual({ httpsPort: 443, acme: undefined });
    expect(c.dnsServers).toBeUndefined();
  });

  it('reads ACME settings: production and staging name Let’s Encrypt, a URL is kept, the CA file must exist', () => {
    expect(loadConfig({ ACME_EMAIL: 'ops@example.com' }, cwd).tls.acme).toEqual({ email: 'ops@example.com', directory: 'https://acme-v02.api.letsencrypt.org/directory', caFile: undefined });
    expect(loadConfig({ ACME_EMAIL: 'ops@example.com', ACME_DIRECTORY: 'staging' }, cwd).tls.acme?.directory).toMatch(/acme-staging-v02/);
    const ca = join(cwd, 'pebble-ca.pem');
    writeFileSync(ca, 'pem');
    expect(loadConfig({ ACME_EMAIL: 'a@b.c', ACME_DIRECTORY: 'https://127.0.0.1:14000/dir', ACME_CA_FILE: ca }, cwd).tls.acme).toEqual({ email: 'a@b.c', directory: 'https://127.0.0.1:14000/dir', caFile: ca });
    expect(() => loadConfig({ ACME_EMAIL: 'a@b.c', ACME_CA_FILE: 'nope.pem' }, cwd)).toThrow(/^ACME_CA_FILE: expected a PEM file/);
    expect(() => loadConfig({ ACME_EMAIL: 'not-an-address' }, cwd)).toThrow(/^ACME_EMAIL: expected an e-mail address/);
    expect(() => loadConfig({ ACME_DIRECTORY: 'letsencrypt' }, cwd)).toThrow(/^ACME_DIRECTORY: expected an https:\/\/ directory URL/);
  });

  it('reads DNS_SERVERS as host:port entries and rejects anything else', () => {
    expect(loadConfig({ DNS_SERVERS: '127.0.0.1:5353, [::1]:53' }, cwd).dnsServers).toEqual(['127.0.0.1:5353', '[::1]:53']);
    expect(() => loadConfig({ DNS_SERVERS: 'dns://1.1.1.1' }, cwd)).toThrow(/^DNS_SERVERS: expected host:port entries/);
  });
});

describe('.env.example', () => {
  it('is a valid configuration as shipped (copied to .env unchanged, the bridge starts)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-example-'));
    writeFileSync(join(dir, '.env'), readFileSync(join(process.cwd(), '.env.example'), 'utf8'));
    const c = loadConfig({}, dir);
    expect(c.docker.restartUnhealthyAfterMs).toBeUndefined();
    expect(c.payments.seed).toBeUndefined();
  });

  it('reads BALANCE_MASTER_ONION (with or without .onion), and asks for DATABASE_URL with it', () => {
    const master = 'a'.repeat(56);
    expect(() => loadConfig({ BALANCE_MASTER_ONION: master }, cwd)).toThrow(/^BALANCE_MASTER_ONION: expected DATABASE_URL too/);
    const c = loadConfig({ BALANCE_MASTER_ONION: `${master.toUpperCase()}.onion`, DATABASE_URL: 'postgres://torplus:pw@db:5432/torplus' }, cwd);
    expect(c.balance).toEqual({ masterOnion: `${master}.onion` });
    expect(String(c.payments.databaseUrl)).not.toContain('pw'); // a Secret
    expect(() => loadConfig({ BALANCE_MASTER_ONION: 'example.onion', DATABASE_URL: 'postgres://x@y/z' }, cwd)).toThrow(/expected the master v3 onion address/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x@y/z' }, cwd)).toThrow(/^DATABASE_URL: expected a postgres:\/\/ URL/);
    // The URL may hold a password: never echoed.
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:secretpw@y/z' }, cwd)).toThrow(/^(?!.*secretpw)/);
  });

  it('puts the password of DATABASE_PASSWORD_FILE into DATABASE_URL, from a file only its owner reads', () => {
    const file = join(cwd, 'db_password.txt');
    writeFileSync(file, 's3cret/pw\n', { mode: 0o600 });
    const c = loadConfig({ DATABASE_URL: 'postgres://torplus@db:5432/torplus', DATABASE_PASSWORD_FILE: file }, cwd);
    expect(c.payments.databaseUrl!.reveal()).toBe('postgres://torplus:s3cret%2Fpw@db:5432/torplus');
    chmodSync(file, 0o644);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://torplus@db:5432/torplus', DATABASE_PASSWORD_FILE: file }, cwd)).toThrow(/^DATABASE_PASSWORD_FILE: expected a file only its owner can read/);
  });

  it('shows the pay page by default, and reads and checks PAYWALL_TEMPLATE at start', () => {
    expect(loadConfig({}, cwd).payments.paywall).toBe('page');
    expect(loadConfig({ PAYWALL: 'throttle' }, cwd).payments.paywall).toBe('throttle');
    expect(() => loadConfig({ PAYWALL: 'popup' }, cwd)).toThrow('PAYWALL: expected page or throttle');
    const good = join(cwd, 'brand.html');
    writeFileSync(good, '<html><head>{{head}}<style nonce="{{nonce}}">body{background:#eee}</style></head><body>{{body}}</body></html>');
    expect(loadConfig({ PAYWALL_TEMPLATE: 'brand.html' }, cwd).payments.paywallTemplate).toContain('{{body}}');
    expect(() => loadConfig({ PAYWALL_TEMPLATE: 'missing.html' }, cwd)).toThrow(/^PAYWALL_TEMPLATE: could not read .*missing\.html: ENOENT$/);
    const bad = join(cwd, 'bad.html');
    writeFileSync(bad, '<html><head>{{head}}</head><body>no body placeholder</body></html>');
    expect(() => loadConfig({ PAYWALL_TEMPLATE: bad }, cwd)).toThrow(`PAYWALL_TEMPLATE: ${bad}: the placeholder {{body}} is missing`);
  });
});
