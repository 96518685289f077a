import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Keypair } from '@stellar/stellar-sdk';
import { loadConfig } from '../config/config.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { fundedAccount } from '../devnet/ledger/testing.js';
import { runInit } from './init.js';

async function init(answers: string[], horizonUrl: string, cwd = mkdtempSync(join(tmpdir(), 'init-'))) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d) => (text += d));
  input.end(answers.join('\n') + '\n');
  const code = await runInit({ cwd, input, output, horizonUrl });
  return { code, text, cwd };
}

describe('torplus-bridge init', () => {
  let ledger: LedgerHandle;
  beforeAll(async () => (ledger = await startLedger({ port: 0 })));
  afterAll(async () => ledger.close());

  it('makes the folders, writes .env 0600 without ever printing the seed, makes the onion and explains DNS', async () => {
    const funded = await fundedAccount(ledger);
    const seed = funded.keypair.secret();
    const { code, text, cwd } = await init(['Example.COM', 'test', seed], ledger.url);
    expect(code).toBe(0);
    expect(text).not.toContain(seed);
    for (const d of ['tor', 'data', 'ssl_torplus']) expect(statSync(join(cwd, d)).mode & 0o777).toBe(0o700);
    expect(statSync(join(cwd, '.env')).mode & 0o777).toBe(0o600);
    // The bridge reads what init wrote.
    const config = loadConfig({}, cwd);
    expect(config.domain).toBe('example.com');
    expect(config.payments.seed?.reveal()).toBe(seed);
    expect(config.payments.network).toBe('testnet');
    const onion = /onion address: ([a-z2-7]{56}\.onion)/.exec(text)![1]!;
    expect(text).toContain(`torplus.example.com TXT "torplus=${onion.replace(/\.onion$/, '')}"`);
    expect(text).toMatch(new RegExp(`✓ account ${funded.address} holds 10000(\\.0+)? XLM`));
    expect(text).toMatch(/ssl_torplus\/.*ACME_EMAIL/s);
  });

  it('says to fund an account that does not exist, and keeps other settings and the seed on a second run', async () => {
    const kp = Keypair.random();
    const cwd = mkdtempSync(join(tmpdir(), 'init-'));
    writeFileSync(join(cwd, '.env'), 'HTTP_PORT=8080\n');
    const first = await init(['example.org', 'test', kp.secret()], ledger.url, cwd);
    expect(first.text).toContain(`✗ account ${kp.publicKey()} does not exist`);
    expect(first.text).toContain('fund it with at least 2 XLM');
    // Second run: empty answers keep the domain, the network and the seed.
    const second = await init(['', '', ''], ledger.url, cwd);
    expect(second.code).toBe(0);
    const config = loadConfig({}, cwd);
    expect(config.httpPort).toBe(8080);
    expect(config.domain).toBe('example.org');
    expect(config.payments.seed?.reveal()).toBe(kp.secret());
    expect(readFileSync(join(cwd, '.env'), 'utf8')).not.toMatch(/^seed=$/m);
  });

  it('refuses a bad domain and a bad seed three times with a clear message, writing nothing', async () => {
    const bad = await init(['https://example.com/', 'no spaces please', 'x y'], ledger.url);
    expect(bad.code).toBe(1);
    expect(bad.text).toContain('"https://example.com/" is not a domain name');
    expect(bad.text).toContain('✗ no domain: run init again');
    const badSeed = await init(['example.net', 'prod', 'SNOTASEED', 'GABC', 'S123'], ledger.url);
    expect(badSeed.code).toBe(1);
    expect(badSeed.text).toContain('that is not a Stellar secret seed');
    expect(badSeed.text).not.toContain('SNOTASEED');
  });
});
