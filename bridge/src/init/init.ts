import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { Keypair, StrKey } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import { configSchema, LETS_ENCRYPT } from '../config/schema.js';
import { HorizonClient } from '../payments/horizon.js';
import { writeFileAtomic } from '../tls/atomic-write.js';
import { ensureOnionKey } from '../tor/onion-key.js';
import { Prompt } from './prompt.js';

export interface InitOptions {
  /** The publisher's folder: .env, www/, tor/, ssl_torplus/, data/ go here. */
  cwd: string;
  input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  output: Writable;
  /** HORIZON_URL from the environment, to check the account somewhere other than Stellar's own. */
  horizonUrl?: string;
}

const HORIZON = { prod: 'https://horizon.stellar.org', test: 'https://horizon-testnet.stellar.org' } as const;

/**
 * `torplus-bridge init` (and scripts/publish.sh): the publisher's first steps. Makes the folders with the
 * right permissions, writes .env with the seed (asked without echo, written 0600, never printed) and
 * PP_ENV, makes the onion key, checks the account on the chosen network, and says what to publish in DNS
 * and where the certificate goes.
 */
export async function runInit(o: InitOptions): Promise<number> {
  const out = (s = '') => o.output.write(s + '\n');
  const prompt = new Prompt(o.input, o.output);
  out('TorPlus Bridge: first steps. Answers go to .env (mode 0600); the seed is never shown.\n');

  // 1. Folders: tor refuses a key folder others can read; the data and TLS key are private too.
  for (const [name, mode] of [['www', 0o755], ['tor', 0o700], ['ssl_torplus', 0o700], ['data', 0o700]] as const) {
    await mkdir(join(o.cwd, name), { recursive: true, mode });
    if (mode === 0o700) await chmod(join(o.cwd, name), 0o700);
  }
  out(`folders: www/ (your site), tor/ and data/ (0700), ssl_torplus/ (0700) in ${o.cwd}`);

  const envFile = join(o.cwd, '.env');
  const existing = existsSync(envFile) ? parseEnv(readFileSync(envFile, 'utf8')) : {};

  // 2. The domain: the record goes on torplus.<domain>.
  let domain: string | undefined;
  for (let i = 0; i < 3 && domain === undefined; i++) {
    const answer = await prompt.ask('Your domain (example.com)', existing.DOMAIN);
    const parsed = configSchema.shape.DOMAIN.safeParse(answer);
    if (parsed.success && parsed.data) domain = parsed.data;
    else out(`  "${answer}" is not a domain name such as example.com (no scheme, no path)`);
  }
  if (!domain) return fail(out, 'no domain: run init again');

  // 3. The network.
  let network: 'prod' | 'test' | undefined;
  for (let i = 0; i < 3 && !network; i++) {
    const answer = (await prompt.ask("Stellar network: 'prod' (real XLM) or 'test'", existing.PP_ENV === 'prod' ? 'prod' : 'test')).toLowerCase();
    if (answer === 'prod' || answer === 'test') network = answer;
    else out(`  answer prod or test`);
  }
  if (!network) return fail(out, 'no network: run init again');

  // 4. The seed, without echo; empty keeps the one in .env, or runs the bridge without payments.
  let seed: string | undefined;
  for (let i = 0; i < 3 && seed === undefined; i++) {
    const answer = await prompt.secret(existing.seed ? 'Stellar secret seed (S…; empty keeps the current one)' : 'Stellar secret seed (S…; empty: no payments)');
    if (answer === '') seed = existing.seed ?? '';
    else if (StrKey.isValidEd25519SecretSeed(answer)) seed = answer;
    else out('  that is not a Stellar secret seed (S…, 56 characters); try again');
  }
  if (seed === undefined) return fail(out, 'no valid seed: run init again');

  const values = { ...existing, DOMAIN: domain, PP_ENV: network, seed };
  const text = Object.entries(values)
    .map(([k, v]) => `${k}=${/[\s#"'$]/.test(v ?? '') ? JSON.stringify(v) : (v ?? '')}`)
    .join('\n');
  await writeFileAtomic(envFile, `# Written by torplus-bridge init. Mode 0600: it holds the seed.\n${text}\n`, 0o600);
  out(`.env written (0600): DOMAIN=${domain}, PP_ENV=${network}${seed ? ', seed set' : ', no seed (payments off)'}`);

  // 5. The onion address, made now so that DNS can be set up before the first start.
  const onion = await ensureOnionKey(join(o.cwd, 'tor', 'hidden_service'));
  out(`onion address: ${onion} (its key is tor/hidden_service; back it up, it is your address)`);

  // 6. The account.
  if (seed) {
    const account = Keypair.fromSecret(seed).publicKey();
    const url = o.horizonUrl ?? HORIZON[network];
    try {
      const info = await new HorizonClient(url, { timeoutMs: 15_000 }).account(account);
      if (!info) out(`✗ account ${account} does not exist on ${url} yet: fund it with at least 2 XLM${network === 'test' ? ` (testnet: https://friendbot.stellar.org/?addr=${account})` : ''}`);
      else out(`✓ account ${account} holds ${formatXlm(info.balance)} XLM on ${url}`);
    } catch (err) {
      out(`! could not check account ${account} on ${url}: ${(err as Error).message}`);
    }
  }

  // 7. What is left to do.
  out(`
Next steps:
  1. DNS: create the name torplus.${domain} with this TXT record
       torplus.${domain} TXT "torplus=${onion.replace(/\.onion$/, '')}"
     TorPlus clients read it (torplus resolve ${domain}) to find your onion.
  2. HTTPS for torplus.${domain}: put fullchain.pem and privkey.pem in ssl_torplus/ (chmod 600),
     or set ACME_EMAIL in .env to have the bridge obtain one from ${LETS_ENCRYPT}
     (HTTP-01: port 80 of this machine must be reachable as torplus.${domain}).
  3. Start it: with Docker, docker compose up -d (the image gives tor/ and ssl_torplus/ to its
     user, uid 10001); without Docker, npm start.
  4. Check everything: npx torplus-bridge doctor`);
  return 0;
}

function fail(out: (s: string) => void, message: string): number {
  out(`✗ ${message}`);
  return 1;
}

