// The payment API over HTTP, with the real PaymentsService on the project's local ledger.
import { Keypair } from '@stellar/stellar-sdk';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLedger, type LedgerHandle } from '../../devnet/ledger/ledger.js';
import { fundedAccount, horizonFor } from '../../devnet/ledger/testing.js';
import { createLogger } from '../../log/logger.js';
import { PaymentsService } from '../../payments/payments-service.js';
import { capturingLogger, paymentXdr, testConfig } from '../../payments/test-support/fixtures.js';
import { Secret } from '../../config/secret.js';
import { adminRouter } from './admin-routes.js';
import { ApiService } from './api-service.js';
import { paymentsRouter } from './payments-routes.js';

describe('payments API', () => {
  let ledger: LedgerHandle;
  let payments: PaymentsService;
  let api: ApiService;
  let base: string;
  let bridge: Keypair;
  let payer: Keypair;
  const admin = new Secret('admin-token-for-tests-0123456789');
  const captured = capturingLogger();

  beforeAll(async () => {
    ledger = await startLedger({ port: 0 });
    bridge = (await fundedAccount(ledger)).keypair;
    payer = (await fundedAccount(ledger)).keypair;
    payments = new PaymentsService({
      config: testConfig(bridge.secret(), { horizonUrl: ledger.url, network: 'local' }),
      dataDir: mkdtempSync(join(tmpdir(), 'api-pay-')),
      log: captured.log,
    });
    await payments.start();
    api = new ApiService({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'error' }), healthReport: () => ({}) });
    api.mount('/v1', paymentsRouter(payments));
    api.mount('/v1/admin', adminRouter(payments, admin));
    await api.start();
    base = `http://127.0.0.1:${api.port()}`;
  });
  afterAll(async () => {
    await api.stop();
    await payments.stop();
    await ledger.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  async function payXdr(requestId: string, mutate: (spec: Parameters<typeof paymentXdr>[0]) => void = () => {}) {
    const json = (await (await fetch(`${base}/v1/payment-requests/${requestId}`)).json()) as Record<string, string>;
    const account = await horizonFor(ledger).loadAccount(payer.publicKey());
    const spec = {
      source: payer, sequence: BigInt(account.sequenceNumber()), destination: json.destination!, amount: BigInt(json.amountStroops!),
      memoHex: json.memoHex, passphrase: json.networkPassphrase!,
    };
    mutate(spec);
    return post(`/v1/payment-requests/${requestId}/payments`, { xdr: paymentXdr(spec) });
  }

  it('serves a payment request with its SEP-7 URI', async () => {
    const { request } = (await payments.requestPayment('circuit:1', 'tor'));
    const r = await fetch(`${base}/v1/payment-requests/${request.id}`);
    expect(r.status).toBe(200);
    const j = (await r.json()) as Record<string, string>;
    expect(j).toMatchObject({ id: request.id, destination: bridge.publicKey(), asset: 'native', memoType: 'MEMO_HASH' });
    expect(j.uri).toMatch(/^web\+stellar:pay\?destination=G/);
  });

  it('credits a signed XDR once, returns the receipt, and refuses a replay', async () => {
    const { request, sessionToken } = (await payments.requestPayment('circuit:2', 'tor'));
    const r = await payXdr(request.id);
    expect(r.status).toBe(201);
    const body = (await r.json()) as { receipt: { requestId: string; amount: string } };
    expect(body.receipt.requestId).toBe(request.id);
    const again = await payXdr(request.id);
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(((await again.json()) as { error: string }).error).toMatch(/already_paid|replay/);
    const state = await fetch(`${base}/v1/session`, { headers: { 'TorPlus-Session': sessionToken! } });
    expect(state.status).toBe(200);
    expect(((await state.json()) as { creditBytes: number }).creditBytes).toBe(request.creditBytes);
  });

  it.each([
    ['a wrong memo', (s: { memoHex?: string }) => (s.memoHex = 'ab'.repeat(32)), /wrong_memo/],
    ['a short amount', (s: { amount: bigint }) => (s.amount = s.amount - 1n), /wrong_amount/],
    ['another network', (s: { passphrase: string }) => (s.passphrase = 'Test SDF Network ; September 2015'), /wrong_network/],
  ])('refuses %s with a specific error', async (_name, mutate, code) => {
    const { request } = (await payments.requestPayment(`circuit:${Math.random()}`, 'tor'));
    const r = await payXdr(request.id, mutate as never);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toMatch(code);
  });

  it.each([
    ['malformed JSON', '{"xdr":', 400, /bad_request/],
    ['an unknown field', { xdr: 'AAAA', extra: 1 }, 400, /bad_request/],
    ['a bad hash', { hash: 'xyz' }, 400, /bad_request/],
    ['garbage XDR', { xdr: 'not-base64!' }, 400, /malformed_xdr/],
    ['a body over the limit', { xdr: 'A'.repeat(40_000) }, 413, /too_large/],
  ])('answers %s with a clear error, not a crash', async (_name, body, status, code) => {
    const { request } = (await payments.requestPayment(`circuit:${Math.random()}`, 'tor'));
    const r = await post(`/v1/payment-requests/${request.id}/payments`, body);
    expect(r.status).toBe(status);
    expect(((await r.json()) as { error: string }).error).toMatch(code);
  });

  it('404s unknown requests and sessions', async () => {
    expect((await fetch(`${base}/v1/payment-requests/nope-nope-nope`)).status).toBe(404);
    expect((await fetch(`${base}/v1/session`, { headers: { 'TorPlus-Session': 'forged-token-value' } })).status).toBe(404);
  });

  it('keeps earnings behind the admin token', async () => {
    expect((await fetch(`${base}/v1/admin/earnings`)).status).toBe(401);
    expect((await fetch(`${base}/v1/admin/earnings`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const r = await fetch(`${base}/v1/admin/earnings`, { headers: { authorization: `Bearer ${admin.reveal()}` } });
    expect(r.status).toBe(200);
    expect(Number(((await r.json()) as { receipts: number }).receipts)).toBeGreaterThanOrEqual(1);
  });

  it('streams payment-complete to the session over SSE', async () => {
    const { request, sessionToken } = (await payments.requestPayment('circuit:sse', 'tor'));
    const ac = new AbortController();
    const res = await fetch(`${base}/v1/events`, { headers: { 'TorPlus-Session': sessionToken! }, signal: ac.signal });
    const reader = res.body!.getReader();
    const got = (async () => {
      let text = '';
      while (!text.includes('payment-complete')) text += new TextDecoder().decode((await reader.read()).value);
      return text;
    })();
    expect((await payXdr(request.id)).status).toBe(201);
    expect(await got).toContain(request.id);
    ac.abort();
  });

  it('never logs the seed', async () => {
    expect(captured.text()).not.toContain(bridge.secret());
  });
});
