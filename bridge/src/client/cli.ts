#!/usr/bin/env node
// `torplus`: the reference client. Downloads a URL through tor's SOCKS port and pays the TorPlus bridge on
// Stellar when it asks, within --max-spend. Exit codes: see USAGE (and errors.ts EXIT).
//
// The seed: from TORPLUS_SEED (preferred), --seed-file, or --seed (visible in `ps`: a warning says so). It is
// never printed: messages are built without it, and every line this program writes passes through a filter
// that replaces the seed (and anything shaped like a Stellar secret seed) with [redacted].
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { StrKey } from '@stellar/stellar-sdk';
import { z } from 'zod';
import { formatXlm, parseXlm } from '../config/amount.js';
import { Secret } from '../config/secret.js';
import { BudgetExhaustedError, ClientError, EXIT, UsageError } from './errors.js';
import { fetchWithPayment, type FetchOptions, type FetchProgress, type FetchResult } from './fetcher.js';
import { OnionChangedError, stateDir } from './onion-pins.js';
import { isResolvableDomain, onionUrl, resolveOnion, type ResolveOptions } from './resolver.js';

export const USAGE = `Usage: torplus fetch URL -o FILE --socks HOST:PORT --max-spend XLM [options]
       torplus resolve DOMAIN [--dns HOST:PORT] [--accept-new-onion]
       torplus --help

Downloads URL (an http:// address, usually a .onion) through tor's SOCKS5 port, paying the TorPlus
bridge in XLM when it asks, never more than --max-spend in total.

  -o, --output FILE     where to save it (written as FILE.part, renamed when complete)
  --socks HOST:PORT     tor's SocksPort, e.g. 127.0.0.1:9050 (a bare PORT means 127.0.0.1)
  --max-spend XLM       the most to pay in total, e.g. 0.5 (0: never pay)
  --horizon URL         your Horizon server; the bridge's network must be the one it serves
                        (required when --max-spend is above 0)
  --mode tab|chain      tab (default): pre-signed tab transactions, no ledger round trip per payment;
                        chain: one on-chain payment per payment request
  --allow-throttled     when --max-spend is reached, finish the download unpaid (slowly) instead of
                        stopping with exit code 3
  --session-file FILE   keep the bridge's session token here (read if present, written 0600), so a later
                        run can use credit left from this one
  --timeout SECONDS     per request, until the response headers (default 60)
  --retries N           attempts in a row without progress before giving up (default 6)
  -q, --quiet           no progress on stderr
  -v, --verbose         tell what happens (payments, probes, resumes) on stderr

URL may name a domain instead of an onion (http:// or https://<domain>/…): its onion is read from the DNS
TXT record torplus.<domain> ("torplus=<onion>"), as \`torplus resolve\` does, and fetched over http.

resolve prints the onion that DOMAIN publishes in its TXT record torplus.DOMAIN (the address checked:
v3, version and checksum). The answer is cached for the record's TTL, and the first onion seen for a
domain is pinned (in $TORPLUS_HOME, default ~/.torplus): if the domain later names another onion, torplus
warns and refuses (exit 5) until you accept it.
  --dns HOST:PORT       the DNS server to ask (default: the system's resolvers)
  --accept-new-onion    accept (and pin) a domain's new onion

The payer's secret seed (S…) comes from the environment variable TORPLUS_SEED (preferred),
--seed-file FILE, or --seed S (visible to other users in ps). It is never printed.

Exit codes: 0 done; 1 failure (network, bridge or ledger refused); 2 bad arguments;
3 --max-spend reached (the partial download is kept as FILE.part); 4 HTTP error from the site;
5 the domain's onion changed (not accepted); 130 interrupted.`;

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  /** stderr is a terminal: progress redraws one line. */
  isTTY?: boolean;
  signal?: AbortSignal;
  /** Tests: override the fetch (e.g. a direct connection, a stand-in ledger). */
  fetch?: (opts: FetchOptions) => Promise<FetchResult>;
}

/** Anything shaped like a Stellar secret seed. */
const SEED_SHAPE = /S[A-Z2-7]{55}/g;

/** Replaces the given secrets, and anything shaped like a seed, with [redacted]. */
export function redactor(secrets: Iterable<string>): (text: string) => string {
  const list = [...secrets].filter((s) => s.length >= 8);
  return (text) => {
    let out = text;
    for (const s of list) out = out.split(s).join('[redacted]');
    return out.replace(SEED_SHAPE, '[redacted]');
  };
}

const hostPort = z.string().transform((v, ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v) ?? (/^\d{1,5}$/.test(v) ? [v, undefined, '127.0.0.1', v] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: 'expected HOST:PORT such as 127.0.0.1:9050' });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2])!, port };
});

function httpUrl(what: string, protocols: string[]) {
  return z.string().refine(
    (v) => {
      try {
        const u = new URL(v);
        return protocols.includes(u.protocol) && u.hostname.length > 0;
      } catch {
        return false;
      }
    },
    { error: `expected ${what}` },
  );
}

/** http:// anything; https:// only with a domain (resolved to its onion, fetched over http). */
const fetchUrl = httpUrl('an http:// URL such as http://<name>.onion/file (onion services speak plain http)', ['http:', 'https:']).refine(
  (v) => !URL.canParse(v) || new URL(v).protocol !== 'https:' || isResolvableDomain(new URL(v).hostname),
  { error: 'expected an http:// URL such as http://<name>.onion/file (onion services speak plain http; https:// only with a domain)' },
);

const dnsServer = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}$|^[0-9.]+$/, { error: 'expected the DNS server as IP:PORT such as 127.0.0.1:53' });

export const FetchArgs = z.object({
  url: fetchUrl,
  output: z.string({ error: 'expected a file name (-o FILE)' }).min(1, { error: 'expected a file name (-o FILE)' }),
  socks: hostPort,
  'max-spend': z
    .string({ error: 'expected the most to spend in XLM, e.g. --max-spend 0.5 (0: never pay)' })
    .refine((v) => parseXlm(v) !== undefined, { error: 'expected an amount of XLM such as 0.5 (at most 7 decimals)' })
    .transform((v) => parseXlm(v)!),
  horizon: httpUrl('an http:// or https:// URL of a Horizon server', ['http:', 'https:']).optional(),
  mode: z.enum(['tab', 'chain'], { error: 'expected tab or chain' }).default('tab'),
  'allow-throttled': z.boolean().default(false),
  'session-file': z.string().min(1, { error: 'expected a file name' }).optional(),
  timeout: z
    .string()
    .regex(/^\d+$/, { error: 'expected a whole number of seconds' })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 3600, { error: 'expected 1 to 3600 seconds' })
    .default(60),
  retries: z
    .string()
    .regex(/^\d+$/, { error: 'expected a whole number' })
    .transform(Number)
    .refine((n) => n <= 100, { error: 'expected 0 to 100' })
    .default(6),
  quiet: z.boolean().default(false),
  verbose: z.boolean().default(false),
  dns: dnsServer.optional(),
  'accept-new-onion': z.boolean().default(false),
});

export interface ParsedFetch {
  url: string;
  output: string;
  socks: { host: string; port: number };
  maxSpendStroops: bigint;
  horizon: string | undefined;
  mode: 'tab' | 'chain';
  allowThrottled: boolean;
  sessionFile: string | undefined;
  timeoutMs: number;
  retries: number;
  quiet: boolean;
  verbose: boolean;
  seed: Secret | undefined;
  /** Where the seed came from, for messages. */
  seedSource: 'TORPLUS_SEED' | '--seed' | '--seed-file' | undefined;
  /** --dns: resolve a domain URL through this server (else the system's resolvers). */
  dns: string | undefined;
  acceptNewOnion: boolean;
}

export interface ParsedResolve {
  domain: string;
  dns: string | undefined;
  acceptNewOnion: boolean;
}

export type Command = { kind: 'help' } | { kind: 'fetch'; args: ParsedFetch } | { kind: 'resolve'; args: ParsedResolve };

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  socks: { type: 'string' },
  seed: { type: 'string' },
  'seed-file': { type: 'string' },
  horizon: { type: 'string' },
  'max-spend': { type: 'string' },
  mode: { type: 'string' },
  'allow-throttled': { type: 'boolean' },
  'session-file': { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  dns: { type: 'string' },
  'accept-new-onion': { type: 'boolean' },
} as const;

/** Parses the command line; throws UsageError with one line that never quotes an argument's value. */
export function parseCommand(argv: string[], env: Record<string, string | undefined>): Command {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    // node's messages quote the offending option NAME only (values are never echoed), but be safe.
    const code = (err as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /'(-{1,2}[A-Za-z0-9-]{1,40})'/.exec((err as Error).message);
      throw new UsageError(`unknown option ${m ? m[1] : ''}`.trim());
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const m = /'(-{1,2}[A-Za-z0-9-]{1,40})/.exec((err as Error).message);
      throw new UsageError(`${m ? m[1] : 'an option'} needs a value`);
    }
    throw new UsageError('cannot parse the arguments');
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help' || positionals.length === 0) return { kind: 'help' };
  if (positionals[0] === 'resolve') return parseResolve(values, positionals);
  if (positionals[0] !== 'fetch') throw new UsageError(`unknown command (expected fetch or resolve)`);
  if (positionals.length !== 2) throw new UsageError(`fetch takes exactly one URL (got ${positionals.length - 1} arguments)`);

  const r = FetchArgs.safeParse({ ...values, url: positionals[1] });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const name = String(issue.path[0] ?? '');
    const label = name === 'url' ? 'the URL' : name === 'output' ? '-o/--output' : `--${name}`;
    throw new UsageError(`${label}: ${issue.message}`);
  }
  const a = r.data;

  // The seed: env first, then --seed-file, then --seed. Validated without ever quoting it.
  const sources = [
    values.seed !== undefined ? '--seed' : undefined,
    values['seed-file'] !== undefined ? '--seed-file' : undefined,
  ].filter(Boolean);
  if (sources.length > 1) throw new UsageError('give the seed one way only (TORPLUS_SEED, --seed-file or --seed)');
  let seedText: string | undefined;
  let seedSource: ParsedFetch['seedSource'];
  if (values.seed !== undefined) {
    seedText = values.seed;
    seedSource = '--seed';
  } else if (values['seed-file'] !== undefined) {
    try {
      seedText = readFileSync(values['seed-file'], 'utf8');
    } catch (err) {
      throw new UsageError(`--seed-file: cannot read it (${(err as { code?: string }).code ?? 'error'})`);
    }
    seedSource = '--seed-file';
  } else if (env.TORPLUS_SEED !== undefined && env.TORPLUS_SEED !== '') {
    seedText = env.TORPLUS_SEED;
    seedSource = 'TORPLUS_SEED';
  }
  let seed: Secret | undefined;
  if (seedText !== undefined) {
    const t = seedText.trim();
    if (!StrKey.isValidEd25519SecretSeed(t)) throw new UsageError(`the seed (${seedSource}): expected a Stellar secret seed (S…, 56 characters)`);
    seed = new Secret(t);
  }
  if (a['max-spend'] > 0n) {
    if (!seed) throw new UsageError('--max-spend is above 0 but no seed is given (set TORPLUS_SEED)');
    if (!a.horizon) throw new UsageError('--horizon: required when --max-spend is above 0 (the network the payments are made on)');
  }
  const output = resolve(a.output);
  const dir = dirname(output);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`-o/--output: the directory ${dir} does not exist`);
  if (existsSync(output) && statSync(output).isDirectory()) throw new UsageError('-o/--output: that is a directory; expected a file name');
  if (a.quiet && a.verbose) throw new UsageError('--quiet and --verbose exclude each other');
  return {
    kind: 'fetch',
    args: {
      url: a.url, output, socks: a.socks, maxSpendStroops: a['max-spend'], horizon: a.horizon, mode: a.mode,
      allowThrottled: a['allow-throttled'], sessionFile: a['session-file'], timeoutMs: a.timeout * 1000, retries: a.retries, quiet: a.quiet,
      verbose: a.verbose, seed, seedSource, dns: a.dns, acceptNewOnion: a['accept-new-onion'],
    },
  };
}

function parseResolve(values: Record<string, unknown>, positionals: string[]): Command {
  if (positionals.length !== 2) throw new UsageError(`resolve takes exactly one domain (got ${positionals.length - 1} arguments)`);
  const other = Object.keys(values).find((k) => k !== 'dns' && k !== 'accept-new-onion' && k !== 'quiet');
  if (other) throw new UsageError(`resolve does not take --${other}`);
  const domain = positionals[1]!.toLowerCase().replace(/\.$/, '');
  if (!isResolvableDomain(domain)) throw new UsageError('resolve: expected a domain name such as example.com (not an onion, not an address)');
  const dns = values.dns === undefined ? undefined : dnsServer.safeParse(values.dns);
  if (dns && !dns.success) throw new UsageError(`--dns: ${dns.error.issues[0]!.message}`);
  return { kind: 'resolve', args: { domain, dns: dns?.data, acceptNewOnion: values['accept-new-onion'] === true } };
}

function resolveOptions(a: { dns: string | undefined; acceptNewOnion: boolean }, io: Io): ResolveOptions {
  return {
    stateDir: stateDir(io.env),
    acceptNewOnion: a.acceptNewOnion,
    ...(a.dns ? { servers: [a.dns] } : io.env.TORPLUS_DNS ? { servers: io.env.TORPLUS_DNS.split(',').map((s) => s.trim()) } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
  };
}

function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function progressLine(p: FetchProgress): string {
  const of = p.total !== undefined ? ` of ${mib(p.total)} (${Math.floor((p.bytes * 100) / Math.max(p.total, 1))}%)` : '';
  const paid = p.paidStroops > 0n ? `, paid ${formatXlm(p.paidStroops)} XLM` : '';
  return `${mib(p.bytes)}${of}, ${mib(Math.round(p.bytesPerSec))}/s${paid}${p.throttled ? ', unpaid (throttled)' : ''}`;
}

/** The one summary line on stdout. */
export function summaryLine(r: FetchResult): string {
  const tab = r.payments.filter((p) => p.mode === 'tab');
  const chain = r.payments.length - tab.length;
  let paid = 'paid nothing';
  if (r.payments.length > 0) {
    const parts: string[] = [];
    if (tab.length) {
      const tabs = new Set(tab.map((p) => p.tabId)).size;
      parts.push(`${tab.length} tab payment${tab.length === 1 ? '' : 's'}${tabs > 1 ? ` on ${tabs} tabs` : ''}`);
    }
    if (chain) parts.push(`${chain} on-chain payment${chain === 1 ? '' : 's'}`);
    paid = `paid ${formatXlm(r.paidStroops)} XLM in ${parts.join(' and ')}`;
  }
  const session = r.sessionId ? ` (session ${r.sessionId})` : '';
  const signed = r.spentStroops > r.paidStroops ? `; ${formatXlm(r.spentStroops)} XLM signed in all` : '';
  const throttled = r.throttled ? '; partly unpaid (throttled)' : '';
  return `fetched ${r.bytes} bytes in ${r.seconds.toFixed(1)} s; ${paid}${session}${signed}${throttled}`;
}

/** Runs the CLI; returns the exit code. Everything written goes through the redactor. */
export async function main(argv: string[], io: Io): Promise<number> {
  const secrets = new Set<string>();
  if (io.env.TORPLUS_SEED) secrets.add(io.env.TORPLUS_SEED.trim());
  for (const a of argv) for (const m of a.matchAll(SEED_SHAPE)) secrets.add(m[0]);
  let redact = redactor(secrets);
  const out = (t: string): void => io.stdout(redact(t));
  const err = (t: string): void => io.stderr(redact(t));

  let command: Command;
  try {
    command = parseCommand(argv, io.env);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`torplus: ${e.message}\n`);
      if (!argv.includes('--quiet') && !argv.includes('-q')) err('Try torplus --help.\n');
      return EXIT.usage;
    }
    err(`torplus: ${(e as Error).message}\n`);
    return EXIT.failure;
  }
  if (command.kind === 'help') {
    out(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (command.kind === 'resolve') {
    try {
      const r = await resolveOnion(command.args.domain, resolveOptions(command.args, io));
      if (r.pin === 'pinned') err(`torplus: pinned ${r.domain} to ${r.onion}.onion (first use)\n`);
      if (r.pin === 'accepted') err(`torplus: accepted the new onion of ${r.domain}: ${r.onion}.onion (pinned)\n`);
      out(`${r.onion}.onion\n`);
      return EXIT.ok;
    } catch (e) {
      return failed(e);
    }
  }
  const a = command.args;
  let url = a.url;
  if (isResolvableDomain(new URL(a.url).hostname)) {
    try {
      const r = await onionUrl(a.url, resolveOptions(a, io));
      url = r.url;
      if (r.resolved && (a.verbose || r.resolved.pin !== 'same')) {
        const how = r.resolved.pin === 'pinned' ? ' (pinned, first use)' : r.resolved.pin === 'accepted' ? ' (the new onion, accepted and pinned)' : '';
        err(`torplus: ${r.resolved.domain} is ${r.resolved.onion}.onion${how}\n`);
      }
    } catch (e) {
      return failed(e);
    }
  }
  if (a.seed) {
    secrets.add(a.seed.reveal());
    redact = redactor(secrets);
  }
  if (a.seedSource === '--seed') err('torplus: warning: --seed is visible to other users of this machine (ps); prefer TORPLUS_SEED or --seed-file\n');

  let sessionToken: string | undefined;
  if (a.sessionFile && existsSync(a.sessionFile)) {
    const t = readFileSync(a.sessionFile, 'utf8').trim();
    if (t) sessionToken = t;
  }
  const showProgress = !a.quiet;
  let progressShown = false;
  const clearProgress = (): void => {
    if (progressShown && io.isTTY) err('\r\x1b[K');
    progressShown = false;
  };
  let lastPlain = 0;
  const opts: FetchOptions = {
    url,
    output: a.output,
    socks: a.socks,
    maxSpendStroops: a.maxSpendStroops,
    mode: a.mode,
    allowThrottled: a.allowThrottled,
    headersTimeoutMs: a.timeoutMs,
    maxRetries: a.retries,
    ...(a.seed ? { seed: a.seed } : {}),
    ...(a.horizon ? { horizonUrl: a.horizon } : {}),
    ...(sessionToken ? { sessionToken } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
    onSessionToken: (token) => {
      if (!a.sessionFile) return;
      try {
        writeFileSync(a.sessionFile, `${token}\n`, { mode: 0o600 });
      } catch (e) {
        clearProgress();
        err(`torplus: warning: cannot write --session-file (${(e as { code?: string }).code ?? 'error'})\n`);
      }
    },
    ...(showProgress
      ? {
          onProgress: (p: FetchProgress) => {
            if (io.isTTY) {
              err(`\r\x1b[K${progressLine(p)}`);
              progressShown = true;
            } else if (Date.now() - lastPlain >= 5000) {
              lastPlain = Date.now();
              err(`${progressLine(p)}\n`);
            }
          },
        }
      : {}),
    ...(a.verbose
      ? {
          onEvent: (m: string) => {
            clearProgress();
            err(`torplus: ${m}\n`);
          },
        }
      : {}),
  };
  try {
    const result = await (io.fetch ?? fetchWithPayment)(opts);
    clearProgress();
    out(`${summaryLine(result)}\n`);
    return EXIT.ok;
  } catch (e) {
    clearProgress();
    if (io.signal?.aborted) {
      err('torplus: interrupted\n');
      return EXIT.interrupted;
    }
    if (e instanceof BudgetExhaustedError) {
      const kept = e.partialPath ? `; ${e.partialBytes} bytes kept in ${e.partialPath}` : '';
      err(`torplus: ${e.message}${kept} (raise --max-spend, or use --allow-throttled to finish unpaid)\n`);
      return EXIT.budget;
    }
    return failed(e);
  }

  function failed(e: unknown): number {
    if (io.signal?.aborted) {
      err('torplus: interrupted\n');
      return EXIT.interrupted;
    }
    if (e instanceof OnionChangedError) {
      err(`torplus: ${'@'.repeat(60)}\ntorplus: ${e.message}\ntorplus: ${'@'.repeat(60)}\n`);
      return e.exitCode;
    }
    if (e instanceof ClientError) {
      err(`torplus: ${e.message}\n`);
      return e.exitCode;
    }
    err(`torplus: ${(e as Error)?.message ?? String(e)}\n`);
    return EXIT.failure;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const abort = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (abort.signal.aborted) process.exit(EXIT.interrupted);
      abort.abort(new Error(`interrupted (${sig})`));
    });
  }
  main(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    isTTY: process.stderr.isTTY === true,
    signal: abort.signal,
  }).then(
    (code) => process.exit(code),
    () => {
      process.stderr.write('torplus: internal error\n');
      process.exit(EXIT.failure);
    },
  );
}
