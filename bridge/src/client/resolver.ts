// Domain → onion for visitors: the TXT record `torplus.<domain>` ("torplus=<onion>"), validated (a v3 address,
// version and checksum), cached for the record's TTL in the state folder (dns-cache.json), and pinned per
// domain (onion-pins.ts). A domain whose record is missing, ambiguous or malformed is an error (exit 1).
import { join } from 'node:path';
import { soleOnion, parseTorplusTxt, torplusName } from '../dns/torplus-txt.js';
import { queryTxt } from '../dns/txt-query.js';
import { ClientError } from './errors.js';
import { OnionPins, readState, writeState, type PinOutcome } from './onion-pins.js';

export interface ResolveOptions {
  /** The client's state folder (stateDir()). */
  stateDir: string;
  /** `host:port` DNS servers; undefined: the system's resolvers. */
  servers?: string[];
  /** Replace the pin when the domain names a new onion. */
  acceptNewOnion?: boolean;
  /** Per DNS server. Default 3000 ms. */
  timeoutMs?: number;
  /** The longest an answer is cached, whatever its TTL (s). Default 86400. */
  maxTtlSeconds?: number;
  now?: () => Date;
  signal?: AbortSignal;
}

export interface Resolved {
  domain: string;
  /** 56 lower-case characters, without `.onion`. */
  onion: string;
  /** Answered from the cache (no DNS query). */
  cached: boolean;
  pin: PinOutcome;
}

interface CacheEntry {
  onion: string;
  /** ms since the epoch. */
  expires: number;
}

/** Is `host` a domain to resolve (not an onion, not an IP literal, not localhost)? */
export function isResolvableDomain(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/.test(h) && !h.endsWith('.onion') && !h.endsWith('.localhost');
}

/** The onion `domain` names, checked against its pin. Throws ClientError (exit 1) or OnionChangedError (exit 5). */
export async function resolveOnion(domain: string, opts: ResolveOptions): Promise<Resolved> {
  const key = domain.toLowerCase().replace(/\.$/, '');
  if (!isResolvableDomain(key)) throw new ClientError(`not a domain name: ${JSON.stringify(domain)}`, 2);
  const now = opts.now?.() ?? new Date();
  const cacheFile = join(opts.stateDir, 'dns-cache.json');
  const pins = new OnionPins(opts.stateDir);
  const cache = readState<CacheEntry>(cacheFile);
  const hit = cache[key];
  if (hit && typeof hit.onion === 'string' && hit.expires > now.getTime()) {
    return { domain: key, onion: hit.onion, cached: true, pin: pins.check(key, hit.onion, opts.acceptNewOnion, now) };
  }
  const name = torplusName(key);
  let answer;
  try {
    answer = await queryTxt(name, {
      ...(opts.servers?.length ? { servers: opts.servers } : {}),
      timeoutMs: opts.timeoutMs ?? 3000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new ClientError(`cannot resolve ${key}: ${(err as Error).message}`);
  }
  if (answer.kind !== 'records') {
    throw new ClientError(`cannot resolve ${key}: ${name} ${answer.kind === 'nxdomain' ? 'does not exist (NXDOMAIN)' : 'has no TXT record'}`);
  }
  const sole = soleOnion(parseTorplusTxt(answer.records));
  if ('problem' in sole) throw new ClientError(`cannot resolve ${key}: ${name}: ${sole.problem}`);
  const pin = pins.check(key, sole.onion, opts.acceptNewOnion, now);
  const ttl = Math.min(answer.ttl, opts.maxTtlSeconds ?? 86_400);
  if (ttl > 0) {
    const fresh = readState<CacheEntry>(cacheFile);
    fresh[key] = { onion: sole.onion, expires: now.getTime() + ttl * 1000 };
    writeState(cacheFile, fresh);
  }
  return { domain: key, onion: sole.onion, cached: false, pin };
}

/**
 * `https://<domain>/path` or `http://<domain>/path` → `http://<onion>.onion/path` (onion services speak plain
 * http; an explicit port is kept). Other URLs (an onion, an IP) come back unchanged, with `domain` undefined.
 */
export async function onionUrl(url: string, opts: ResolveOptions): Promise<{ url: string; resolved: Resolved | undefined }> {
  const u = new URL(url);
  if (!isResolvableDomain(u.hostname)) return { url, resolved: undefined };
  const resolved = await resolveOnion(u.hostname, opts);
  const port = u.port ? `:${u.port}` : '';
  return { url: `http://${resolved.onion}.onion${port}${u.pathname}${u.search}`, resolved };
}
