import { existsSync } from 'node:fs';
import { readFile, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import Database from 'better-sqlite3';
import type { Config } from '../config/config.js';
import { formatXlm } from '../config/amount.js';
import { parseTorplusTxt, torplusName, torplusRecord } from '../dns/torplus-txt.js';
import { queryTxt } from '../dns/txt-query.js';
import { probeUpstream } from '../gateway/upstream-probe.js';
import { IPFS_DB_FILE } from '../ipfs/ipfs-db.js';
import { HorizonClient } from '../payments/horizon.js';
import { inspectPair, namesCover } from '../tls/cert-info.js';
import { readOnionAddress } from '../tor/onion-key.js';
import { fail, pass, warn, type CheckResult } from './check.js';

/** What the running bridge says about itself (GET /healthz), when it runs. */
export type BridgeHealth = { services?: Record<string, Record<string, unknown>> } | undefined;

export async function checkTor(config: Config, health: BridgeHealth): Promise<{ result: CheckResult; onion: string | undefined }> {
  const name = 'tor and the onion';
  const onion = await readOnionAddress(join(config.paths.tor, 'hidden_service'));
  if (!onion) return { onion, result: fail(name, `no onion key in ${config.paths.tor}/hidden_service yet`, 'start the bridge once (npm start): it makes the key, and keeps it there') };
  if (!health) {
    return { onion, result: fail(name, `${onion}, but no bridge answers on 127.0.0.1:${config.apiPort}/healthz`, 'start the bridge (npm start, or docker compose up) and run doctor again') };
  }
  const tor = health.services?.tor ?? {};
  const svc = health.services?.onion ?? {};
  if (!tor.bootstrapped) return { onion, result: fail(name, `tor is not bootstrapped: ${String(tor.detail ?? 'no detail')}`, 'wait a minute; if it stays, check that this machine reaches the Tor network (the bridge log shows tor\'s own lines)') };
  if (!svc.published) return { onion, result: fail(name, `${onion} is not published yet`, 'wait a minute for tor to upload the descriptor') };
  return { onion, result: pass(name, `${onion} is published; tor is bootstrapped`) };
}

export async function checkTxtRecord(config: Config, onion: string | undefined, signal?: AbortSignal): Promise<CheckResult> {
  const name = 'TXT record';
  if (!config.domain) return fail(name, 'DOMAIN is not set, so there is no record to check', 'set DOMAIN to your domain (example.com) in .env');
  const record = torplusRecord(config.domain, onion ?? '<onion address>');
  let answer;
  try {
    answer = await queryTxt(torplusName(config.domain), { servers: config.dnsServers, signal });
  } catch (err) {
    return fail(name, (err as Error).message, `check DNS_SERVERS (${config.dnsServers?.join(', ') ?? "the system's resolvers"})`);
  }
  const parsed = answer.kind === 'records' ? parseTorplusTxt(answer.records) : { onions: [], malformed: [] };
  const mine = onion?.replace(/\.onion$/, '');
  if (parsed.onions.length === 0 && parsed.malformed.length === 0) {
    return fail(name, `${torplusName(config.domain)} has no torplus= record`, `publish ${record}`);
  }
  if (parsed.malformed.length > 0) return fail(name, `${torplusName(config.domain)} has a malformed record: ${parsed.malformed[0]!.reason}`, `replace it with ${record}`);
  if (!mine || parsed.onions.length !== 1 || parsed.onions[0] !== mine) {
    return fail(name, `${torplusName(config.domain)} names ${parsed.onions.map((o) => `${o}.onion`).join(' and ')}, not this bridge's onion`, `replace it with ${record}`);
  }
  return pass(name, `${torplusName(config.domain)} names this onion`);
}

export async function checkDnsLink(config: Config, health: BridgeHealth, signal?: AbortSignal): Promise<CheckResult> {
  const name = 'DNSLink record';
  if (!config.ipfs.enabled) return pass(name, 'IPFS is off (IPFS_ENABLED=false)');
  if (!config.domain) return warn(name, 'DOMAIN is not set', 'set DOMAIN to have the DNSLink record checked');
  const root = (health?.services?.ipfs?.root as string | undefined) ?? latestRoot(config);
  const where = `_dnslink.torplus.${config.domain}`;
  if (!root) return warn(name, 'nothing published to IPFS yet', 'start the bridge: it publishes WWW_DIR and prints the record');
  const want = `dnslink=/ipfs/${root}`;
  let records: string[] = [];
  try {
    const a = await queryTxt(where, { servers: config.dnsServers, signal });
    records = a.kind === 'records' ? a.records.map((r) => r.join('').trim()) : [];
  } catch (err) {
    return warn(name, (err as Error).message, `check DNS_SERVERS`);
  }
  const links = records.filter((r) => r.startsWith('dnslink='));
  if (links.includes(want)) return pass(name, `${where} points at the current root`);
  // Optional: the site works without it; IPFS users find the content through it.
  if (links.length === 0) return warn(name, `${where} has no dnslink= record`, `publish ${where} TXT "${want}"`);
  return warn(name, `${where} points at ${links[0]!.slice('dnslink='.length)}, not the current root`, `replace it with ${where} TXT "${want}"`);
}

/** The newest published root, from the IPFS database, when the bridge is not running. */
function latestRoot(config: Config): string | undefined {
  const file = join(config.ipfs.dir, IPFS_DB_FILE);
  if (!existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT root FROM versions ORDER BY published_at DESC LIMIT 1').get() as { root: string } | undefined)?.root;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

export async function checkCertificate(config: Config, now = Date.now()): Promise<CheckResult> {
  const name = 'certificate';
  const host = config.domain ? `torplus.${config.domain}` : undefined;
  const certFile = join(config.paths.ssl, 'fullchain.pem');
  const keyFile = join(config.paths.ssl, 'privkey.pem');
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8').catch(() => undefined), readFile(keyFile, 'utf8').catch(() => undefined)]);
  const howToGet = config.tls.acme
    ? `the bridge obtains one from ${config.tls.acme.directory} while it runs (ACME_EMAIL is set); check its log for ACME errors`
    : `put fullchain.pem and privkey.pem for ${host ?? 'torplus.<DOMAIN>'} in ${config.paths.ssl}, or set ACME_EMAIL to have the bridge obtain one`;
  if (!cert || !key) return fail(name, `no certificate in ${config.paths.ssl}`, howToGet);
  let info;
  try {
    info = inspectPair(cert, key, now, config.paths.ssl);
  } catch (err) {
    return fail(name, (err as Error).message, howToGet);
  }
  if (host && !namesCover(info.names, host)) return fail(name, `it names ${info.names.join(', ')}, not ${host}`, howToGet);
  if (info.daysLeft < 7) return fail(name, `${info.daysLeft} days left (until ${info.notAfter.toISOString().slice(0, 10)})`, `renew it: ${howToGet}`);
  return pass(name, `valid for ${host ?? info.names.join(', ')}, ${info.daysLeft} days left`);
}

export async function checkUpstream(config: Config): Promise<CheckResult> {
  const name = 'upstream';
  if (config.upstream) {
    return (await probeUpstream(config.upstream))
      ? pass(name, `${config.upstream.origin} accepts connections`)
      : fail(name, `${config.upstream.origin} does not accept connections`, 'start the web server (the web container), or fix UPSTREAM_URL');
  }
  const index = join(config.paths.www, 'index.html');
  return existsSync(index)
    ? pass(name, `no UPSTREAM_URL: the bridge serves ${config.paths.www}`)
    : fail(name, `no UPSTREAM_URL, and ${index} does not exist`, `put the site in ${config.paths.www}, or set UPSTREAM_URL`);
}

export async function checkHorizon(config: Config, signal?: AbortSignal): Promise<CheckResult> {
  const name = 'Horizon and the account';
  const seed = config.payments.seed;
  if (!seed) return pass(name, 'no seed: payments are off and visitors are served for free');
  const account = Keypair.fromSecret(seed.reveal()).publicKey();
  const horizon = new HorizonClient(config.payments.horizonUrl, { timeoutMs: 10_000 });
  let info;
  try {
    info = await horizon.account(account, signal);
  } catch (err) {
    return fail(name, `${config.payments.horizonUrl}: ${(err as Error).message}`, 'check HORIZON_URL and PP_ENV, and that this machine reaches Horizon');
  }
  if (!info) return fail(name, `${account} does not exist on ${config.payments.network}`, 'fund it with at least 2 XLM');
  if (info.balance < 20_000_000n) return fail(name, `${account} has only ${formatXlm(info.balance)} XLM`, 'fund it with at least 2 XLM (the reserve plus fees)');
  return pass(name, `${account} on ${config.payments.network} holds ${formatXlm(info.balance)} XLM`);
}

export async function checkPermissions(config: Config): Promise<CheckResult> {
  const name = 'permissions of keys and the seed';
  const hs = join(config.paths.tor, 'hidden_service');
  const files: Array<[string, number]> = [
    [hs, 0o700],
    [join(hs, 'hs_ed25519_secret_key'), 0o600],
    [join(config.paths.data, 'admin-token'), 0o600],
    [join(config.paths.data, 'payments.sqlite'), 0o600],
    [join(config.ipfs.dir, 'libp2p.key'), 0o600],
    [join(config.paths.ssl, 'privkey.pem'), 0o600],
  ];
  if (config.payments.seedFile) files.push([config.payments.seedFile, 0o600]);
  const loose: string[] = [];
  for (const [path, mode] of files) {
    const st = await stat(path).catch(() => undefined);
    if (st && st.mode & 0o077) loose.push(`${path} is ${(st.mode & 0o777).toString(8)} (want ${mode.toString(8)})`);
  }
  if (loose.length > 0) return fail(name, loose.join('; '), `chmod go-rwx ${loose.map((l) => l.split(' is ')[0]).join(' ')}`);
  return pass(name, 'only their owner can read them');
}

export async function checkDisk(config: Config): Promise<CheckResult> {
  const name = 'free disk space';
  let dir = config.paths.data;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (free < config.ipfs.fillReserveBytes) {
    return fail(name, `${gib(free)} free under ${dir}, less than FILL_RESERVE_BYTES (${gib(config.ipfs.fillReserveBytes)})`, 'free some space, or lower FILL_RESERVE_BYTES');
  }
  return pass(name, `${gib(free)} free under ${dir}; FILL_RESERVE_BYTES is ${gib(config.ipfs.fillReserveBytes)}`);
}
