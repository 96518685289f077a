// PaymentsService against the local ledger (a Horizon-compatible server, offline): start-up checks, the
// three ways a payment comes in (signed XDR, hash, the account's payment stream), every refusal, replays,
// sessions, and the seed never leaving the process.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair, Networks } from '@stellar/stellar-sdk';
import { Secret } from '../config/secret.js';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { HorizonClient, HorizonUnavailable } from './horizon.js';
import { PaymentsService, type PaymentsServiceOptions } from './payments-service.js';
import { FlakyHorizon, capturingLogger, paymentErrorOf, paymentTransaction, paymentXdr, testConfig, waitFor } from './test-support/fixtures.js';
import type { PaymentComplete, PaymentRequest } from './types.js';

let ledger: LedgerHandle;
let horizon: HorizonClient;
let bridge: Keypair;
let payer: Keypair;
let dir: string;
const services: PaymentsService[] = [];
const logs = capturingLogger();

beforeAll(async () => {
  ledger = await startLedger();
  horizon = new HorizonClient(ledger.url);
  bridge = Keypair.random();
  payer = Keypair.random();
  await ledger.friendbot(bridge.publicKey());
  await ledger.friendbot(payer.publicKey());
});
afterAll(async () => {
  for (const s of services) await s.stop();
  await ledger.close();
  if (process.env.PAYMENTS_TEST_LOGS === '1') process.stdout.write(logs.text());
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'payments-svc-'));
});
afterEach(async () => {
  while (services.length) await services.pop()!.stop();
  rmSync(dir, { recursive: true, force: true });
});

function service(over: Partial<PaymentsServiceOptions> & { config?: ReturnType<typeof testConfig> } = {}): PaymentsService {
  const s = new PaymentsService({
    config: testConfig(bridge.secret(), { horizonUrl: ledger.url }),
    dataDir: dir,
    log: logs.log,
    ...over,
  });
  services.push(s);
  return s;
}

/** A payment of `request` by `from`, signed, as a wallet builds it. */
async function payXdr(request: PaymentRequest, over: Partial<Parameters<typeof paymentXdr>[0]> = {}, from = payer): Promise<string> {
  const seq = (await horizon.account(from.publicKey()))!.sequence;
  return paymentXdr({
    source: from, sequence: seq, destination: request.destination, amount: request.amount, memoHex: request.memoHash,
    passphrase: ledger.networkPassphrase, ...over,
  });
}

function completions(s: PaymentsService): PaymentComplete[] {
  const seen: PaymentComplete[] = [];
  s.on('complete', (c) => seen.push(c));
  return seen;
}

describe('start', () => {
  it('runs disabled without a seed', async () => {
    const s = service({ config: testConfig(undefined) });
    await s.start();
    expect(s.health()).toMatchObject({ ok: true, enabled: false, detail: expect.stringMatching(/disabled/) });
    expect((await paymentErrorOf(() => s.requestPayment('circuit:1', 'tor'))).code).toBe('payments_disabled');
    expect((await paymentErrorOf(() => s.earnings())).message).toMatch(/no seed/);
  });

  it('tells the publisher to fund an unfunded account', async () => {
    const fresh = Keypair.random();
    const err = await service({ config: testConfig(fresh.secret(), { horizonUrl: ledger.url }) }).start().catch((e: Error) => e);
    expect(String(err)).toMatch(new RegExp(`${fresh.publicKey()} does not exist on the local network.*Fund it`));
    expect(String(err)).not.toContain(fresh.secret());
  });

  it('refuses a Horizon of another network than configured', async () => {
    const config = testConfig(bridge.secret(), { network: 'testnet', passphrase: Networks.TESTNET, horizonUrl: ledger.url });
    const err = await service({ config }).start().catch((e: Error) => e);
    expect(String(err)).toMatch(/serves the network "TorPlus Local Ledger ; 2026".*refusing/);
  });

  it('says when Horizon cannot be reached, and never echoes a bad seed', async () => {
    const down = await service({ config: testConfig(bridge.secret(), { horizonUrl: 'http://127.0.0.1:1' }) }).start().catch((e: Error) => e);
    expect(String(down)).toMatch(/cannot reach Horizon at http:\/\/127.0.0.1:1/);
    const bad = 'SBADSEEDSBADSEEDSBADSEEDSBADSEEDSBADSEEDSBADSEEDSBADSEED';
    const err = await service({ config: { ...testConfig(undefined, { horizonUrl: ledger.url }), seed: new Secret(bad) } }).start().catch((e: Error) => e);
    expect(String(err)).toMatch(/not a valid Stellar secret seed/);
    expect(String(err) + JSON.stringify(err) + String((err as Error).stack)).not.toContain(bad);
  });

  it('reads the passphrase from the local ledger and reports health', async () => {
    const s = service();
    await s.start();
    expect(s.networkPassphrase).toBe(ledger.networkPassphrase);
    expect(s.account).toBe(bridge.publicKey());
    expect(s.health()).toMatchObject({ ok: true, enabled: true, account: bridge.publicKey(), network: 'local' });
    expect(JSON.stringify(s.health())).not.toContain(bridge.secret());
    // DATA_DIR holds the database only, unreadable by others, and no seed.
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f)).includes(Buffer.from(bridge.secret()))).toBe(false);
  });
});

describe('paying a request', () => {
  it('credits a signed XDR once, though the stream sees it too', async () => {
    const s = service();
    const seen = completions(s);
    const requested: PaymentRequest[] = [];
    s.on('requested', (r) => requested.push(r));
    await s.start();
    const { request, sessionToken } = (await s.requestPayment('circuit:1', 'tor'));
    expect(requested).toEqual([request]);
    expect((await s.requestPayment('circuit:1', 'tor'))).toEqual({ request, created: false });
    expect(requested).toHaveLength(1);
    const before = (await horizon.account(bridge.publicKey()))!.balance;

    const receipt = await s.submitXdr(request.id, await payXdr(request));
    expect(receipt).toMatchObject({ requestId: request.id, via: 'xdr', amount: request.amount, from: payer.publicKey(), creditBytes: request.creditBytes });
    expect(receipt.operationId).toMatch(/^\d+$/);
    await new Promise((r) => setTimeout(r, 300));
    await s.idle();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ receipt, visitorKey: 'circuit:1', request: { id: request.id, status: 'paid' } });
    expect((await horizon.account(bridge.publicKey()))!.balance - before).toBe(request.amount);
    expect((await s.getRequest(request.id))!.status).toBe('paid');

    const state = (await s.sessionState(sessionToken!))!;
    expect(state).toMatchObject({ creditBytes: request.creditBytes, usedBytes: 0, remainingBytes: request.creditBytes });
    expect(state.receipts).toEqual([receipt]);
    expect(s.resolveSession(sessionToken!)).toBe(request.sessionId);
    expect(await s.leaseCredit(request.sessionId, 1000)).toBe(1000);
    expect((await s.sessionState(sessionToken!))!.usedBytes).toBe(1000);
    expect((await s.receipts(sessionToken!))).toEqual([receipt]);
    expect((await s.earnings())).toMatchObject({ receipts: 1, creditedStroops: request.amount, onChainStroops: request.amount });

    // Replays: the same XDR again, its hash for this request, its hash for another request.
    expect((await paymentErrorOf(s.submitXdr(request.id, await payXdr(request)))).code).toBe('already_paid');
    expect((await paymentErrorOf(s.submitHash(request.id, receipt.transactionHash))).code).toBe('replay');
    const other = (await s.requestPayment('circuit:2', 'tor')).request;
    expect((await paymentErrorOf(s.submitHash(other.id, receipt.transactionHash))).code).toBe('wrong_memo');
    expect(seen).toHaveLength(1);
  });

  it('refuses every malformed or mismatched payment, specifically, and charges nothing', async () => {
    let now = Date.now();
    const s = service({ now: () => now, limits: { perVisitor: { capacity: 50, perMinute: 50 } } });
    await s.start();
    const { request } = (await s.requestPayment('circuit:3', 'tor'));
    const stranger = Keypair.random();
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['malformed_xdr', async () => s.submitXdr(request.id, 'AAAA-not-xdr')],
      ['malformed_xdr', async () => s.submitXdr(request.id, Buffer.from('junk junk junk junk').toString('base64'))],
      ['malformed_xdr', async () => s.submitXdr(request.id, undefined)],
      ['wrong_memo', async () => s.submitXdr(request.id, await payXdr(request, { memoHex: 'ab'.repeat(32) }))],
      ['wrong_memo', async () => s.submitXdr(request.id, await payXdr(request, { memoHex: undefined }))],
      ['wrong_network', async () => s.submitXdr(request.id, await payXdr(request, { passphrase: Networks.TESTNET }))],
      ['wrong_amount', async () => s.submitXdr(request.id, await payXdr(request, { amount: request.amount - 1n }))],
      ['wrong_destination', async () => s.submitXdr(request.id, await payXdr(request, { destination: payer.publicKey() }))],
      ['bad_signature', async () => s.submitXdr(request.id, await payXdr(request, { signers: [stranger] }))],
      ['unknown_request', async () => s.submitXdr('req_nope', await payXdr(request))],
      ['unknown_request', async () => s.submitHash('req_nope', 'ab'.repeat(32))],
      ['unknown_transaction', async () => s.submitHash(request.id, 'not a hash')],
      ['unknown_transaction', async () => s.submitHash(request.id, 'ab'.repeat(32))],
      // Horizon refuses a wrong sequence number: nothing was paid.
      ['transaction_failed', async () => {
        const seq = (await horizon.account(payer.publicKey()))!.sequence;
        return s.submitXdr(request.id, paymentXdr({ source: payer, sequence: seq + 5n, destination: bridge.publicKey(), amount: request.amount, memoHex: request.memoHash, passphrase: ledger.networkPassphrase }));
      }],
    ];
    const balance = (await horizon.account(payer.publicKey()))!.balance;
    for (const [code, run] of cases) {
      const err = await paymentErrorOf(run());
      expect([code, err.code]).toEqual([code, err.code === code ? code : err.message]);
      expect(err.message).not.toContain(bridge.secret());
    }
    expect((await horizon.account(payer.publicKey()))!.balance).toBe(balance);
    // Expired: the clock passes the request's expiry.
    now = request.expiresAt + 1;
    expect((await paymentErrorOf(s.submitXdr(request.id, await payXdr(request)))).code).toBe('expired_request');
    expect((await s.getRequest(request.id))!.status).toBe('expired');
    expect((await s.earnings()).receipts).toBe(0);
  });

  it('credits a transaction the visitor submitted itself, by its hash', async () => {
    const flaky = new FlakyHorizon(new HorizonClient(ledger.url));
    flaky.streaming = false;
    const s = service({ horizon: flaky });
    const seen = completions(s);
    await s.start();
    const { request } = (await s.requestPayment('circuit:4', 'tor'));
    const seq = (await horizon.account(payer.publicKey()))!.sequence;
    // Paying more than asked buys proportionally more.
    const tx = paymentTransaction({ source: payer, sequence: seq, destination: bridge.publicKey(), amount: request.amount * 2n, memoHex: request.memoHash, passphrase: ledger.networkPassphrase });
    await horizon.submit(tx);
    const hash = Buffer.from(tx.hash()).toString('hex');
    const receipt = await s.submitHash(request.id, hash.toUpperCase());
    expect(receipt).toMatchObject({ via: 'hash', transactionHash: hash, amount: request.amount * 2n, creditBytes: request.creditBytes * 2 });
    expect((await paymentErrorOf(s.submitHash(request.id, hash))).code).toBe('replay');
    expect(seen).toHaveLength(1);
  });

  it('credits wallet payments from the stream, persists the cursor, and never twice across restarts', async () => {
    let s = service();
    let seen = completions(s);
    await s.start();
    const { request, sessionToken } = (await s.requestPayment('circuit:5', 'tor'));
    // A SEP-7 wallet: it pays the memo, the bridge is not told anything.
    await horizon.submit(paymentTransaction({
      source: payer, sequence: (await horizon.account(payer.publicKey()))!.sequence, destination: bridge.publicKey(),
      amount: request.amount, memoHex: request.memoHash, passphrase: ledger.networkPassphrase,
    }));
    await waitFor(() => seen.length === 1, 5000, 'the stream credit');
    expect(seen[0]!.receipt.via).toBe('stream');
    expect(seen[0]!.visitorKey).toBe('circuit:5');
    // A payment with no request's memo (a donation) is not credited, and does not stop the stream.
    await horizon.submit(paymentTransaction({
      source: payer, sequence: (await horizon.account(payer.publicKey()))!.sequence, destination: bridge.publicKey(),
      amount: 12345n, memoText: 'thanks', passphrase: ledger.networkPassphrase,
    }));
    await new Promise((r) => setTimeout(r, 300));
    await s.idle();
    expect(seen).toHaveLength(1);
    await s.stop();

    // A payment while the bridge is down is credited on the next start; earlier ones are not again.
    const second = { ...request };
    const s2req = await (async () => {
      s = service();
      seen = completions(s);
      await s.start();
      const r = (await s.requestPayment('circuit:5b', 'tor', sessionToken)).request;
      await s.stop();
      return r;
    })();
    await horizon.submit(paymentTransaction({
      source: payer, sequence: (await horizon.account(payer.publicKey()))!.sequence, destination: bridge.publicKey(),
      amount: s2req.amount, memoHex: s2req.memoHash, passphrase: ledger.networkPassphrase,
    }));
    s = service();
    seen = completions(s);
    await s.start();
    await waitFor(() => seen.length === 1, 5000, 'the credit after restart');
    expect(seen[0]!.request.id).toBe(s2req.id);
    await new Promise((r) => setTimeout(r, 300));
    await s.idle();
    expect(seen).toHaveLength(1);
    const state = (await s.sessionState(sessionToken!))!;
    expect(state.receipts.map((r) => r.requestId).sort()).toEqual([second.id, s2req.id].sort());
    expect(state.creditBytes).toBe(2 * request.creditBytes);
  });

  it('leases credit that is there, never more, keeps what was taken across restarts, and takes back what is returned', async () => {
    let s = service();
    await s.start();
    const { request, sessionToken } = (await s.requestPayment('circuit:6', 'tor'));
    expect(await s.leaseCredit(request.sessionId, 500)).toBe(0); // not paid: nothing to lease
    expect(await s.leaseCredit('ses_nope', 1)).toBe(0);
    await s.stop();
    s = service();
    await s.start();
    expect((await s.sessionState(sessionToken!))!.usedBytes).toBe(0);
    expect(s.resolveSession(sessionToken!)).toBeInstanceOf(Promise); // after a restart the token is looked up once…
    expect(await s.resolveSession(sessionToken!)).toBe(request.sessionId);
    expect(s.resolveSession(sessionToken!)).toBe(request.sessionId); // …then answered from memory
    expect((await s.sessionState('z'.repeat(43)))).toBeUndefined();
    expect((await paymentErrorOf(() => s.receipts('z'.repeat(43)))).code).toBe('unknown_session');
  });
});

describe('when Horizon falters', () => {
  it('keeps a stream record until Horizon answers again, then credits it', async () => {
    const flaky = new FlakyHorizon(new HorizonClient(ledger.url));
    const s = service({ horizon: flaky });
    const seen = completions(s);
    await s.start();
    const { request } = (await s.requestPayment('circuit:20', 'tor'));
    flaky.failing.set('transaction', new HorizonUnavailable('down (test)'));
    await horizon.submit(paymentTransaction({
      source: payer, sequence: (await horizon.account(payer.publicKey()))!.sequence, destination: bridge.publicKey(),
      amount: request.amount, memoHex: request.memoHash, passphrase: ledger.networkPassphrase,
    }));
    await new Promise((r) => setTimeout(r, 700));
    expect(seen).toHaveLength(0);
    flaky.failing.delete('transaction');
    await waitFor(() => seen.length === 1, 10_000, 'the credit after Horizon came back');
    expect(seen[0]!.receipt.via).toBe('stream');
  });

  it('says a lost submission answer may still be credited, and the stream credits it', async () => {
    const flaky = new FlakyHorizon(new HorizonClient(ledger.url));
    const s = service({ horizon: flaky });
    const seen = completions(s);
    await s.start();
    const { request } = (await s.requestPayment('circuit:21', 'tor'));
    flaky.loseSubmitAnswers = 1;
    const err = await paymentErrorOf(s.submitXdr(request.id, await payXdr(request)));
    expect(err.code).toBe('horizon_unavailable');
    expect(err.message).toMatch(/credited anyway.*submit its hash [0-9a-f]{64}/);
    await waitFor(() => seen.length === 1, 5000, 'the stream credit');
    expect((await s.getRequest(request.id))!.status).toBe('paid');
  });
});

describe('the seed', () => {
  it('never reached a log line (no redaction configured) nor an error', async () => {
    const text = logs.text();
    expect(text).toMatch(/credited/);
    expect(text).not.toContain(bridge.secret());
    expect(text).not.toContain(Buffer.from(bridge.rawSecretKey()).toString('base64'));
    expect(text).not.toContain(Buffer.from(bridge.rawSecretKey()).toString('hex'));
  });
});
