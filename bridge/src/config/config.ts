import { Networks, StrKey } from '@stellar/stellar-sdk';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { configSchema, type RawConfig } from './schema.js';
import { Secret } from './secret.js';
import { parseTemplate } from '../gateway/paywall/template.js';

/** The pay page (template included) must stay under 30 KB; a template is a frame, not a page of its own. */
const MAX_TEMPLATE_BYTES = 16 * 1024;

/** The bridge's settings, typed and resolved. Built once by `loadConfig` and passed down. */
export interface Config {
  paths: { www: string; tor: string; data: string; ssl: string };
  listenHost: string;
  httpPort: number;
  apiPort: number;
  domain: string | undefined;
  /** The web server to front; undefined means the bridge serves `paths.www` itself. */
  upstream: URL | undefined;
  tor: {
    bin: string;
    /** Path of a file of extra torrc lines (a private test network, for example). */
    extraConfigFile: string | undefined;
    powDefense: boolean;
    introDosDefense: boolean;
  };
  proxyWorkers: number;
  logLevel: RawConfig['LOG_LEVEL'];
  payments: PaymentsConfig;
  ipfs: IpfsConfig;
  tls: TlsConfig;
  /** DNS_SERVERS as host:port; undefined: the system's resolvers. */
  dnsServers: string[] | undefined;
  /** DNS_RETRY_SECONDS, in ms. */
  dnsRetryMs: number;
  /**
   * BALANCE_MASTER_ONION: this bridge is an Onionbalance backend of the master (`….onion`), which is
   * the site's address; the frontend is `torplus-bridge balance`. Needs DATABASE_URL.
   */
  balance: { masterOnion: string } | undefined;
  /** The web container, watched through the Docker socket when it is mounted. */
  docker: { webContainer: string | undefined; socketPath: string; restartUnhealthyAfterMs: number | undefined };
}

export interface TlsConfig {
  /** The local HTTPS port (the onion's is always 443). */
  httpsPort: number;
  /** ACME: set when ACME_EMAIL is. */
  acme: { email: string; directory: string; caFile: string | undefined } | undefined;
}

export interface IpfsConfig {
  enabled: boolean;
  /** DATA_DIR/ipfs: blocks, pins and the popularity counts. */
  dir: string;
  keepVersions: number;
  halfLifeMs: number;
  /** Peers' onion addresses (`….onion`), for fill. */
  peers: string[];
  fillReserveBytes: number;
  fillIntervalMs: number;
  fillTopN: number;
  /** libp2p on the onion: bitswap with peers, metered and paid. */
  libp2p: boolean;
  /** The onion's virtual port for libp2p (/onion3/<address>:<port>). */
  listenPort: number;
  /** Bytes of blocks a peer gets over bitswap before it is asked to pay. */
  freeBytes: number;
  throttleBytesPerSec: number;
  /** The most one fill run pays peers, in stroops. */
  fillMaxSpendStroops: bigint;
}

export type StellarNetwork = 'public' | 'testnet' | 'local';

export interface PaymentsConfig {
  /** The publisher's Stellar secret seed; undefined runs the bridge without payments. */
  seed: Secret | undefined;
  /** SEED_FILE, resolved, when the seed came from a file (doctor checks its permissions). */
  seedFile?: string;
  network: StellarNetwork;
  /** Horizon for `network`; always set for 'local' (HORIZON_URL is required there). */
  horizonUrl: string;
  /** The network passphrase; undefined for 'local', where the ledger's own root tells it. */
  passphrase: string | undefined;
  freeBytes: number;
  graceSeconds: number;
  throttleBytesPerSec: number;
  pricePerMibStroops: bigint;
  /** IPFS_PRICE_PER_MIB: what peers pay per MiB of blocks (bitswap); default PRICE_PER_MIB. */
  ipfsPricePerMibStroops?: bigint;
  /** How many MiB of credit one payment request buys. */
  paymentMib: number;
  requestTtlSeconds: number;
  tabSettleSeconds: number;
  tabMaxUnsettledStroops: bigint;
  adminToken: Secret | undefined;
  /** PAYWALL: `page` shows a browser's navigations the pay page once throttled; `throttle` never does. */
  paywall: 'page' | 'throttle';
  /** PAYWALL_TEMPLATE's text, checked at start; undefined: the bridge's own page. */
  paywallTemplate: string | undefined;
  /** DATABASE_URL: PostgreSQL for the payments (several bridges); undefined: SQLite in DATA_DIR. A secret (it may hold a password). */
  databaseUrl?: Secret;
}

/** A setting with a bad value. The message names the variable and says what is expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

// Variables whose values must never be echoed back in an error message.
const SECRET_VARIABLES = new Set(['seed', 'SEED', 'ADMIN_TOKEN', 'DATABASE_URL']);

/**
 * Parses the environment, and the `.env` file when one is present (the environment wins).
 * Throws ConfigError, never anything else, on bad input.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const merged = { ...readEnvFile(env.ENV_FILE ?? resolve(cwd, '.env')), ...definedOnly(env) };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'configuration');
    const value = merged[name];
    const shown = value === undefined || SECRET_VARIABLES.has(name) ? '' : ` (got ${JSON.stringify(value)})`;
    throw new ConfigError(`${name}: ${issue.message}${shown}`);
  }
  return fromRaw(parsed.data, cwd);
}

function fromRaw(raw: RawConfig, cwd: string): Config {
  const extra = raw.TOR_EXTRA_CONFIG === undefined ? undefined : resolve(cwd, raw.TOR_EXTRA_CONFIG);
  if (extra !== undefined && !existsSync(extra)) {
    throw new ConfigError(`TOR_EXTRA_CONFIG: expected the path of a readable file of torrc lines (no file at ${extra})`);
  }
  return {
    paths: {
      www: resolve(cwd, raw.WWW_DIR),
      tor: resolve(cwd, raw.TOR_DIR),
      data: resolve(cwd, raw.DATA_DIR),
      ssl: resolve(cwd, raw.SSL_DIR),
    },
    listenHost: raw.LISTEN_HOST,
    httpPort: raw.HTTP_PORT,
    apiPort: raw.API_PORT,
    domain: raw.DOMAIN,
    upstream: raw.UPSTREAM_URL === undefined ? undefined : new URL(raw.UPSTREAM_URL),
    tor: {
      bin: raw.TOR_BIN,
      extraConfigFile: extra,
      powDefense: raw.TOR_POW_DEFENSE,
      introDosDefense: raw.TOR_INTRO_DOS_DEFENSE,
    },
    proxyWorkers: raw.PROXY_WORKERS === 0 ? availableParallelism() : raw.PROXY_WORKERS,
    logLevel: raw.LOG_LEVEL,
    payments: paymentsConfig(raw, cwd),
    tls: {
      httpsPort: raw.HTTPS_PORT,
      acme: raw.ACME_EMAIL === undefined ? undefined : { email: raw.ACME_EMAIL, directory: raw.ACME_DIRECTORY, caFile: caFile(raw.ACME_CA_FILE, cwd) },
    },
    balance: balanceConfig(raw),
    dnsServers: raw.DNS_SERVERS?.split(',').map((s) => s.trim()),
    dnsRetryMs: raw.DNS_RETRY_SECONDS * 1000,
    docker: {
      webContainer: raw.WEB_CONTAINER,
      socketPath: raw.DOCKER_SOCKET,
      restartUnhealthyAfterMs: raw.WEB_RESTART_UNHEALTHY_SECONDS === undefined ? undefined : raw.WEB_RESTART_UNHEALTHY_SECONDS * 1000,
    },
    ipfs: {
      enabled: raw.IPFS_ENABLED,
      dir: resolve(cwd, raw.DATA_DIR, 'ipfs'),
      keepVersions: raw.IPFS_KEEP_VERSIONS,
      halfLifeMs: raw.IPFS_HALF_LIFE_HOURS * 3600_000,
      peers: raw.PEERS,
      fillReserveBytes: raw.FILL_RESERVE_BYTES,
      fillIntervalMs: raw.FILL_INTERVAL_SECONDS * 1000,
      fillTopN: raw.FILL_TOP_N,
      libp2p: raw.IPFS_LIBP2P,
      listenPort: raw.IPFS_LISTEN_PORT || 4001,
      freeBytes: raw.IPFS_FREE_BYTES,
      throttleBytesPerSec: raw.IPFS_THROTTLE_BYTES_PER_SEC,
      fillMaxSpendStroops: raw.FILL_MAX_SPEND,
    },
  };
}

/** DATABASE_URL with the password from DATABASE_PASSWORD_FILE (a Docker secret), which others must not read. */
function withPasswordFile(url: string, file: string | undefined, cwd: string): string {
  if (file === undefined) return url;
  const path = resolve(cwd, file);
  let password: string;
  try {
    const mode = statSync(path).mode;
    if (mode & 0o077) throw new ConfigError(`DATABASE_PASSWORD_FILE: expected a file only its owner can read (chmod 600 ${path}); it is ${(mode & 0o777).toString(8)}`);
    password = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`DATABASE_PASSWORD_FILE: could not read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.href;
}

function balanceConfig(raw: RawConfig): Config['balance'] {
  if (raw.BALANCE_MASTER_ONION === undefined) return undefined;
  if (raw.DATABASE_URL === undefined) {
    throw new ConfigError('BALANCE_MASTER_ONION: expected DATABASE_URL too: the bridges behind one address share PostgreSQL (payments, and the list of backends the frontend reads)');
  }
  return { masterOnion: `${raw.BALANCE_MASTER_ONION.toLowerCase().replace(/\.onion$/, '')}.onion` };
}

function caFile(file: string | undefined, cwd: string): string | undefined {
  if (file === undefined) return undefined;
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new ConfigError(`ACME_CA_FILE: expected a PEM file of the ACME server's CA (no file at ${path})`);
  return path;
}

const NETWORKS = {
  public: { horizon: 'https://horizon.stellar.org', passphrase: Networks.PUBLIC },
  testnet: { horizon: 'https://horizon-testnet.stellar.org', passphrase: Networks.TESTNET },
} as const;

function paymentsConfig(raw: RawConfig, cwd: string): PaymentsConfig {
  const network: StellarNetwork = raw.PP_ENV === 'prod' ? 'public' : raw.PP_ENV === 'local' ? 'local' : 'testnet';
  if (network === 'local' && raw.HORIZON_URL === undefined) {
    throw new ConfigError('HORIZON_URL: expected the URL of the local ledger when PP_ENV=local (start one with `npm run ledger`)');
  }
  if (raw.seed !== undefined && raw.SEED_FILE !== undefined) {
    throw new ConfigError('SEED_FILE: expected either seed or SEED_FILE, not both');
  }
  return {
    seed: raw.seed !== undefined ? new Secret(raw.seed) : raw.SEED_FILE !== undefined ? readSeedFile(resolve(cwd, raw.SEED_FILE)) : undefined,
    ...(raw.SEED_FILE !== undefined ? { seedFile: resolve(cwd, raw.SEED_FILE) } : {}),
    network,
    horizonUrl: raw.HORIZON_URL ?? (network === 'local' ? '' : NETWORKS[network].horizon),
    passphrase: network === 'local' ? undefined : NETWORKS[network].passphrase,
    freeBytes: raw.FREE_BYTES,
    graceSeconds: raw.GRACE_SECONDS,
    throttleBytesPerSec: raw.THROTTLE_BYTES_PER_SEC,
    pricePerMibStroops: raw.PRICE_PER_MIB,
    ...(raw.IPFS_PRICE_PER_MIB !== undefined ? { ipfsPricePerMibStroops: raw.IPFS_PRICE_PER_MIB } : {}),
    paymentMib: raw.PAYMENT_MIB,
    requestTtlSeconds: raw.PAYMENT_REQUEST_TTL_SECONDS,
    tabSettleSeconds: raw.TAB_SETTLE_SECONDS,
    tabMaxUnsettledStroops: raw.TAB_MAX_UNSETTLED,
    adminToken: raw.ADMIN_TOKEN !== undefined ? new Secret(raw.ADMIN_TOKEN) : undefined,
    paywall: raw.PAYWALL,
    ...(raw.DATABASE_URL !== undefined ? { databaseUrl: new Secret(withPasswordFile(raw.DATABASE_URL, raw.DATABASE_PASSWORD_FILE, cwd)) } : {}),
    paywallTemplate: raw.PAYWALL_TEMPLATE === undefined ? undefined : readPaywallTemplate(resolve(cwd, raw.PAYWALL_TEMPLATE)),
  };
}

/** The publisher's pay page template, read and checked now: a broken one stops the bridge at start. */
function readPaywallTemplate(path: string): string {
  let text: string;
  try {
    if (statSync(path).size > MAX_TEMPLATE_BYTES) {
      throw new ConfigError(`PAYWALL_TEMPLATE: ${path} is larger than ${MAX_TEMPLATE_BYTES / 1024} KiB; the pay page must stay small`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`PAYWALL_TEMPLATE: could not read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    parseTemplate(text);
  } catch (err) {
    throw new ConfigError(`PAYWALL_TEMPLATE: ${path}: ${(err as Error).message}`);
  }
  return text;
}

/** Docker secrets and the like: a file holding the seed, which others must not be able to read. */
function readSeedFile(path: string): Secret {
  let text: string;
  try {
    const mode = statSync(path).mode;
    if (mode & 0o077) {
      throw new ConfigError(`SEED_FILE: expected a file only its owner can read (chmod 600 ${path}); it is ${(mode & 0o777).toString(8)}`);
    }
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`SEED_FILE: could not read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!StrKey.isValidEd25519SecretSeed(text)) {
    throw new ConfigError(`SEED_FILE: expected the file ${path} to hold a Stellar secret seed (S…, 56 characters)`);
  }
  return new Secret(text);
}

function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  try {
    return definedOnly(parseEnv(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new ConfigError(`ENV_FILE: could not read ${path}: ${(err as Error).message}`);
  }
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
