import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { fundedAccount } from '../devnet/ledger/testing.js';
import { makeCert } from '../tls/test-support/certs.js';
import { ensureOnionKey } from '../tor/onion-key.js';
import { formatChecks } from './check.js';
import { checkCertificate, checkDisk, checkHorizon, checkPermissions, checkTor, checkUpstream } from './checks.js';
import { Keypair } from '@stellar/stellar-sdk';

function setup(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
  for (const d of ['www', 'data', 'ssl', 'tor']) mkdirSync(join(dir, d), { recursive: true });
  return { dir, config: loadConfig({ DOMAIN: 'example.test', SSL_DIR: 'ssl', ...env }, dir) };
}

describe('doctor checks', () => {
  it('tor: says to start the bridge when there is no key, or when no bridge answers', async () => {
    const { dir, config } = setup({ API_PORT: '1' });
    expect((await checkTor(config, undefined)).result).toMatchObject({ ok: false, fix: expect.stringMatching(/start the bridge once/) });
    const onion = await ensureOnionKey(join(dir, 'tor', 'hidden_service'));
    const r = await checkTor(config, undefined);
    expect(r.onion).toBe(onion);
    expect(r.result).toMatchObject({ ok: false, detail: expect.stringContaining('no bridge answers on 127.0.0.1:1/healthz') });
    const healthy = await checkTor(config, { services: { tor: { bootstrapped: true }, onion: { published: true } } });
    expect(healthy.result.ok).toBe(true);
  });

  it('certificate: missing, for another name, and good', async () => {
    const { dir, config } = setup();
    expect(await checkCertificate(config)).toMatchObject({ ok: false, fix: expect.stringMatching(/put fullchain\.pem and privkey\.pem for torplus\.example\.test .* or set ACME_EMAIL/) });
    const other = await makeCert(['www.example.test']);
    writeFileSync(join(dir, 'ssl', 'fullchain.pem'), other.cert);
    writeFileSync(join(dir, 'ssl', 'privkey.pem'), other.key, { mode: 0o600 });
    expect(await checkCertificate(config)).toMatchObject({ ok: false, detail: 'it names www.example.test, not torplus.example.test' });
    const good = await makeCert(['torplus.example.test'], 30);
    writeFileSync(join(dir, 'ssl', 'fullchain.pem'), good.cert);
    writeFileSync(join(dir, 'ssl', 'privkey.pem'), good.key, { mode: 0o600 });
    expect(await checkCertificate(config)).toMatchObject({ ok: true, detail: expect.stringMatching(/^valid for torplus\.example\.test, (29|30) days left$/) });
    expect((await checkCertificate(config, Date.now() + 27 * 86_400_000)).ok).toBe(false);
  });

  it('permissions: names every file others can read, with the chmod that fixes it', async () => {
    const { dir, config } = setup();
    await ensureOnionKey(join(dir, 'tor', 'hidden_service'));
    expect((await checkPermissions(config)).ok).toBe(true);
    writeFileSync(join(dir, 'data', 'admin-token'), 'x');
    chmodSync(join(dir, 'data', 'admin-token'), 0o644);
    chmodSync(join(dir, 'tor', 'hidden_service', 'hs_ed25519_secret_key'), 0o640);
    const r = await checkPermissions(config);
    expect(r.ok).toBe(false);
    expect(r.detail).toContain('admin-token is 644 (want 600)');
    expect(r.detail).toContain('hs_ed25519_secret_key is 640 (want 600)');
    expect(r.fix).toMatch(/^chmod go-rwx .*hs_ed25519_secret_key .*admin-token$/);
  });

  it('upstream and disk', async () => {
    const { dir, config } = setup({ FILL_RESERVE_BYTES: '1000000G' });
    expect((await checkUpstream(config)).ok).toBe(false);
    writeFileSync(join(dir, 'www', 'index.html'), '<h1>hi</h1>');
    expect((await checkUpstream(config)).ok).toBe(true);
    expect(await checkUpstream(loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:1' }, dir))).toMatchObject({ ok: false, fix: expect.stringMatching(/start the web server/) });
    expect(await checkDisk(config)).toMatchObject({ ok: false, fix: 'free some space, or lower FILL_RESERVE_BYTES' });
    expect((await checkDisk(loadConfig({ FILL_RESERVE_BYTES: '1M' }, dir))).ok).toBe(true);
  });

  describe('Horizon and the account, on the local ledger', () => {
    let ledger: LedgerHandle;
    beforeAll(async () => (ledger = await startLedger({ port: 0 })));
    afterAll(async () => ledger.close());

    it('passes without a seed, fails for an unfunded account, passes once funded', async () => {
      expect((await checkHorizon(setup().config)).detail).toMatch(/no seed: payments are off/);
      const kp = Keypair.random();
      const env = { seed: kp.secret(), PP_ENV: 'local', HORIZON_URL: ledger.url };
      expect(await checkHorizon(setup(env).config)).toMatchObject({ ok: false, detail: expect.stringContaining('does not exist on local'), fix: 'fund it with at least 2 XLM' });
      const funded = await fundedAccount(ledger);
      const r = await checkHorizon(setup({ ...env, seed: funded.keypair.secret() }).config);
      expect(r).toMatchObject({ ok: true, detail: expect.stringMatching(/holds 10000(\.0+)? XLM/) });
    });
  });

  it('prints ✓, ! and ✗ lines, each failure with its fix, and a count', () => {
    const text = formatChecks([
      { name: 'a', ok: true, detail: 'fine' },
      { name: 'b', ok: true, warn: true, detail: 'optional', fix: 'do b' },
      { name: 'c', ok: false, detail: 'broken', fix: 'do c' },
    ]);
    expect(text.split('\n')).toEqual(['✓ a: fine', '! b: optional', '    fix: do b', '✗ c: broken', '    fix: do c', '', '1 of 3 checks failed']);
  });
});
