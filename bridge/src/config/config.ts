import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { configSchema, type RawConfig } from './schema.js';

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
}

/** A setting with a bad value. The message names the variable and says what is expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

// Variables whose values must never be echoed back in an error message.
const SECRET_VARIABLES = new Set(['seed', 'SEED', 'ADMIN_TOKEN']);

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
  };
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
