import { StrKey } from '@stellar/stellar-sdk';
import { z } from 'zod';
import { parseXlm } from './amount.js';

// Every setting of the bridge, read from environment variables (and `.env`). The names are fixed:
// tests, the container and the README use them. Parsed once, at the edge; the rest of the code
// receives the typed `Config` and never reads `process.env`.

const port = (fallback: number) =>
  z.coerce
    .number({ error: 'expected a TCP port number' })
    .int('expected a whole TCP port number')
    .min(0, 'expected a port from 0 to 65535')
    .max(65535, 'expected a port from 0 to 65535')
    .default(fallback);

const flag = (fallback: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
      error: 'expected true or false',
    })
    .default(fallback ? 'true' : 'false')
    .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const optionalString = z
  .string()
  .transform((v) => v.trim())
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/,
    'expected a domain name such as example.com, without scheme or path',
  );

const upstreamUrl = z
  .url({ error: 'expected an http:// URL such as http://web:80' })
  .refine((u) => /^http:\/\/[^/]+\/?$/.test(u), 'expected an http:// URL with host and port only, such as http://web:80');

const xlm = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => parseXlm(v) !== undefined, 'expected an amount of XLM such as 0.01 (at most 7 decimals)')
    .transform((v) => parseXlm(v)!);

const whole = (what: string, fallback: number, min = 0) =>
  z.coerce
    .number({ error: `expected ${what}` })
    .int(`expected a whole number of ${what}`)
    .min(min, `expected at least ${min} ${what}`)
    .default(fallback);

// A size in bytes, with an optional binary suffix: 1073741824, 1024M, 1G, 1GiB, 500MB (powers of 1024).
const size = (fallback: string) =>
  z
    .string()
    .trim()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v);
      const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
      const bytes = m ? Math.floor(Number(m[1]) * units[m[2]!.toLowerCase()]!) : NaN;
      if (!Number.isSafeInteger(bytes)) {
        ctx.addIssue({ code: 'custom', message: 'expected a size in bytes, such as 1073741824, 500M or 2G' });
        return z.NEVER;
      }
      return bytes;
    });

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

// A v3 onion address: 56 base32 characters, with or without ".onion".
const ONION = /^[a-z2-7]{56}$/;
const peers = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const out: string[] = [];
    for (const item of v.split(/[\s,]+/).filter(Boolean)) {
      const host = item.toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, '').replace(/\.onion$/, '');
      if (!ONION.test(host)) {
        ctx.addIssue({ code: 'custom', message: `expected v3 onion addresses separated by commas; ${JSON.stringify(item)} is not one` });
        return z.NEVER;
      }
      if (!out.includes(`${host}.onion`)) out.push(`${host}.onion`);
    }
    return out;
  });

export const configSchema = z.object({
  WWW_DIR: z.string().min(1).default('./www'),
  TOR_DIR: z.string().min(1).default('./tor'),
  DATA_DIR: z.string().min(1).default('./data'),
  SSL_DIR: z.string().min(1).default('./ssl_torplus'),
  HTTP_PORT: port(80),
  API_PORT: port(8000),
  LISTEN_HOST: z.string().min(1).default('0.0.0.0'),
  DOMAIN: domain.optional().or(z.literal('').transform(() => undefined)),
  UPSTREAM_URL: upstreamUrl.optional().or(z.literal('').transform(() => undefined)),
  TOR_EXTRA_CONFIG: optionalString,
  TOR_BIN: z.string().min(1).default('tor'),
  TOR_POW_DEFENSE: flag(true),
  TOR_INTRO_DOS_DEFENSE: flag(true),
  PROXY_WORKERS: z.coerce
    .number({ error: 'expected a number of worker processes' })
    .int('expected a whole number of worker processes')
    .min(0, 'expected 0 (one per core) or a positive number')
    .max(64, 'expected at most 64 worker processes')
    // 2, from bench/proxy on the 2-core reference machine (wrk -t2 -c50 on loopback, nginx proxy_pass =
    // 1.0): one process forwards 1 KiB at ≈ 0.55 of nginx's req/s but 1 MiB at only ≈ 0.6–0.7 of its
    // throughput; two workers reach ≈ 0.6 and ≈ 1.0, p99 within 5 ms either way. The cost: ≈ 0.1 s
    // more at start (no measurable change in restart-to-reachable time, which tor dominates) and about
    // 50–100 MB of memory per worker. Not 0 (one per core): in a container with a CPU quota Node
    // still counts the host's cores. Onion traffic is bound by tor, not by the proxy. Metering works
    // across the workers (the Meter stays in the primary: gateway/meter/meter-host.ts).
    .default(2),
  // --- payments -----------------------------------------------------------------------------
  // The design card's name for the publisher's Stellar secret seed. Never echoed anywhere.
  seed: optionalString.refine((v) => v === undefined || StrKey.isValidEd25519SecretSeed(v), 'expected a Stellar secret seed (S…, 56 characters)'),
  SEED_FILE: optionalString,
  // prod: Stellar's public network; local: the project's local ledger; anything else: the test network.
  PP_ENV: z.string().trim().toLowerCase().default('test'),
  HORIZON_URL: z.url({ error: 'expected the http(s):// URL of a Horizon server' }).optional().or(z.literal('').transform(() => undefined)),
  FREE_BYTES: whole('bytes', 5 * 1024 * 1024),
  GRACE_SECONDS: whole('seconds', 10),
  THROTTLE_BYTES_PER_SEC: whole('bytes per second', 32 * 1024, 1024),
  PRICE_PER_MIB: xlm('0.001'),
  PAYMENT_MIB: whole('MiB', 10, 1),
  PAYMENT_REQUEST_TTL_SECONDS: whole('seconds', 900, 30),
  TAB_SETTLE_SECONDS: whole('seconds', 10, 1),
  TAB_MAX_UNSETTLED: xlm('1'),
  ADMIN_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 16, 'expected at least 16 characters'),
  // page: a visitor's browser gets the pay page (402, HTML) past the allowance; throttle: only the throttle.
  PAYWALL: z.enum(['page', 'throttle'], { error: 'expected page or throttle' }).default('page'),
  // An HTML file framing the pay page in the site's look (placeholders in the README).
  PAYWALL_TEMPLATE: optionalString,
  // This bridge is an Onionbalance backend of this master onion (several bridges, one address).
  BALANCE_MASTER_ONION: optionalString.refine((v) => v === undefined || /^[a-z2-7]{56}(\.onion)?$/i.test(v), 'expected the master v3 onion address (56 characters, with or without .onion)'),
  // A file holding DATABASE_URL's password (a Docker secret), so the URL itself holds none.
  DATABASE_PASSWORD_FILE: optionalString,
  // PostgreSQL for the payments, shared by several bridges; unset: SQLite in DATA_DIR.
  DATABASE_URL: optionalString.refine((v) => v === undefined || /^postgres(ql)?:\/\/\S+$/.test(v), 'expected a postgres:// URL such as postgres://torplus@db:5432/torplus'),
  // --- IPFS ---------------------------------------------------------------------------------
  IPFS_ENABLED: flag(true),
  IPFS_KEEP_VERSIONS: whole('versions', 3, 1),
  // Popularity halves every this many hours without requests, so that old favourites fade.
  IPFS_HALF_LIFE_HOURS: z.coerce.number({ error: 'expected a number of hours' }).positive('expected more than 0 hours').default(24),
  PEERS: peers,
  FILL_RESERVE_BYTES: size('1G'),
  FILL_INTERVAL_SECONDS: whole('seconds', 3600, 10),
  FILL_TOP_N: whole('CIDs', 10, 1),
  // Peers over libp2p (bitswap): what they get free, then pay for, and their throttled rate.
  // libp2p on the onion (bitswap with peers); false leaves peers the HTTP gateway only.
  IPFS_LIBP2P: flag(true),
  IPFS_LISTEN_PORT: port(4001),
  IPFS_FREE_BYTES: size('50M'),
  IPFS_PRICE_PER_MIB: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || parseXlm(v) !== undefined, 'expected an amount of XLM such as 0.001 (at most 7 decimals)')
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : parseXlm(v)!)),
  IPFS_THROTTLE_BYTES_PER_SEC: whole('bytes per second', 32 * 1024, 1024),
  // The most this bridge pays peers' payment requests during fill, per fill run.
  FILL_MAX_SPEND: xlm('1'),
  // --- TLS and DNS --------------------------------------------------------------------------
  HTTPS_PORT: port(443),
  // With an e-mail address the bridge obtains and renews its certificate itself (ACME, HTTP-01).
  ACME_EMAIL: optionalString.refine((v) => v === undefined || /^[^\s@]+@[^\s@]+$/.test(v), 'expected an e-mail address'),
  // The ACME directory: a URL, or `production` / `staging` for Let's Encrypt's.
  ACME_DIRECTORY: z
    .string()
    .trim()
    .default('production')
    .transform((v) => (v === 'production' ? LETS_ENCRYPT : v === 'staging' ? LETS_ENCRYPT_STAGING : v))
    .refine((v) => /^https?:\/\/\S+$/.test(v), 'expected an https:// directory URL, or production or staging'),
  ACME_CA_FILE: optionalString,
  // host:port, comma-separated; unset: the system's resolvers.
  DNS_SERVERS: optionalString.refine(
    (v) => v === undefined || v.split(',').every((s) => /^(\[[0-9a-f:]+\]|[^\s:,]+)(:\d{1,5})?$/i.test(s.trim())),
    'expected host:port entries separated by commas, such as 127.0.0.1:5353',
  ),
  // --- Docker --------------------------------------------------------------------------------
  // The web container to watch through the Docker socket (compose service or container name).
  WEB_CONTAINER: optionalString,
  DOCKER_SOCKET: z.string().min(1).default('/var/run/docker.sock'),
  // Restart the web container after it has been unhealthy this long; unset: never.
  WEB_RESTART_UNHEALTHY_SECONDS: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.coerce.number({ error: 'expected a number of seconds' }).int('expected whole seconds').min(10, 'expected at least 10 seconds').optional(),
  ),
  // How soon the TXT record is looked up again while it is missing or wrong.
  DNS_RETRY_SECONDS: whole('seconds', 60, 1),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug'], { error: 'expected error, warn, info or debug' }).default('info'),
});

export type RawConfig = z.infer<typeof configSchema>;
