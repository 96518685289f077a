// buildTabTransaction / buildChainPayment against the bridge's own offline checks (payments/verify.ts), and
// the zod schemas of bridge-api.ts against the bridge's own JSON (requestJson, TabInfo).
import { Keypair, Networks, TransactionBuilder, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm } from '../config/amount.js';
import { PaymentError } from '../payments/errors.js';
import { requestJson } from '../payments/payment-requests.js';
import { TAB_MAX_FEE_STROOPS, TAB_MIN_REMAINING_SECONDS, type TabInfo } from '../payments/tabs.js';
import type { PaymentRequest } from '../payments/types.js';
import { matchPayment, parseTransaction, requireSignatures, verifyTabTransaction, type TabTerms } from '../payments/verify.js';
import { PaymentRequestSchema, TabSchema, camelKeys } from './bridge-api.js';
import { PaymentFailedError } from './errors.js';
import { buildChainPayment, buildTabTransaction, creditFor } from './payer.js';

const PASSPHRASE = 'TorPlus Local Ledger ; 2026';
const bridge = Keypair.random();
const payer = Keypair.random();
const memoHex = 'ab'.repeat(32);
const now = 1_800_000_000;

/** A tab exactly as the bridge's TabBook.info() returns it (JSON strings). */
function tabInfo(over: Partial<TabInfo> = {}): TabInfo {
  return {
    id: 'tab_x', requestId: 'req_x', payer: payer.publicKey(), account: bridge.publicKey(), sequence: '4294967300',
    memoType: 'MEMO_HASH', memoHex, memo: Buffer.from(memoHex, 'hex').toString('base64'), limit: '100000000', amount: '0',
    maxFee: TAB_MAX_FEE_STROOPS.toString(), minRemainingSeconds: TAB_MIN_REMAINING_SECONDS, networkPassphrase: PASSPHRASE,
    status: 'open', ...over,
  };
}

/** The terms TabBook.terms() derives from the same tab. */
function terms(t: TabInfo, lastAmount = 0n): TabTerms {
  return {
    bridge: t.account, sequence: BigInt(t.sequence), payer: t.payer, memoHash: t.memoHex, lastAmount, limit: BigInt(t.limit),
    maxFee: BigInt(t.maxFee), minRemainingSeconds: t.minRemainingSeconds,
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PaymentError) return err.code;
    throw err;
  }
  return 'ok';
}

describe('buildTabTransaction', () => {
  it('builds what verifyTabTransaction accepts, from the bridge\'s TabInfo as is', () => {
    const t = tabInfo();
    const xdr = buildTabTransaction(t, 1_000_000n, payer, { nowSec: now });
    const v = verifyTabTransaction(xdr, terms(t), PASSPHRASE, now);
    expect(v.amount).toBe(1_000_000n);
    expect(v.maxTime).toBeGreaterThanOrEqual(now + TAB_MIN_REMAINING_SECONDS);
    const tx = v.parsed.tx;
    expect(tx.source).toBe(bridge.publicKey());
    expect(tx.sequence).toBe('4294967300');
    expect(BigInt(tx.fee)).toBeLessThanOrEqual(TAB_MAX_FEE_STROOPS);
    expect(tx.operations).toHaveLength(1);
    expect(tx.operations[0]).toMatchObject({ type: 'payment', source: payer.publicKey(), destination: bridge.publicKey(), amount: '0.1000000' });
    expect(Number(tx.timeBounds?.minTime)).toBe(0);
    // Signed by the payer only: the bridge adds its own signature when it settles.
    expect(tx.signatures).toHaveLength(1);
    expect(() => requireSignatures(v.parsed, PASSPHRASE, [payer.publicKey()])).not.toThrow();
    expect(() => requireSignatures(v.parsed, PASSPHRASE, [bridge.publicKey()])).toThrow(/not signed by/);
  });

  it('accepts the client\'s normalised TabState too, and a series of growing cumulative amounts', () => {
    const state = TabSchema.parse(tabInfo());
    let last = 0n;
    for (const cumulative of [500_000n, 1_500_000n, 1_500_001n, 100_000_000n]) {
      const xdr = buildTabTransaction(state, cumulative, payer, { nowSec: now });
      expect(verifyTabTransaction(xdr, terms(tabInfo(), last), PASSPHRASE, now).amount).toBe(cumulative);
      last = cumulative;
    }
  });

  it('stays valid long enough for the bridge (validity is at least its minimum + 60 s)', () => {
    const t = tabInfo({ minRemainingSeconds: 600 });
    const xdr = buildTabTransaction(t, 10n, payer, { nowSec: now, validitySeconds: 30 });
    const v = verifyTabTransaction(xdr, { ...terms(t), minRemainingSeconds: 600 }, PASSPHRASE, now);
    expect(v.maxTime).toBe(now + 660);
    // Default validity: 15 minutes.
    expect(verifyTabTransaction(buildTabTransaction(t, 10n, payer, { nowSec: now }), terms(t), PASSPHRASE, now).maxTime).toBe(now + 900);
    // Built long ago, it is refused as expired: the clock is the caller's.
    expect(codeOf(() => verifyTabTransaction(buildTabTransaction(t, 10n, payer, { nowSec: now - 2000 }), terms(t), PASSPHRASE, now))).toBe('bad_time_bounds');
  });

  it('is bound to the tab\'s network, sequence, memo and payer', () => {
    const t = tabInfo();
    const xdr = buildTabTransaction(t, 1000n, payer, { nowSec: now });
    expect(codeOf(() => verifyTabTransaction(xdr, terms(t), Networks.TESTNET, now))).not.toBe('ok');
    expect(codeOf(() => verifyTabTransaction(xdr, { ...terms(t), sequence: 4294967301n }, PASSPHRASE, now))).toBe('wrong_sequence');
    expect(codeOf(() => verifyTabTransaction(xdr, { ...terms(t), memoHash: 'cd'.repeat(32) }, PASSPHRASE, now))).toBe('wrong_memo');
    expect(codeOf(() => verifyTabTransaction(xdr, { ...terms(t), payer: Keypair.random().publicKey() }, PASSPHRASE, now))).toBe('wrong_source');
    expect(codeOf(() => verifyTabTransaction(xdr, terms(t, 1000n), PASSPHRASE, now))).toBe('replay');
    // The same amount on the public network's passphrase is another transaction (another hash and signature).
    const pub = buildTabTransaction({ ...t, networkPassphrase: Networks.PUBLIC }, 1000n, payer, { nowSec: now });
    expect(codeOf(() => verifyTabTransaction(pub, terms(t), PASSPHRASE, now))).toBe('wrong_network');
  });

  it('refuses what the bridge would refuse, before signing', () => {
    const t = tabInfo();
    expect(() => buildTabTransaction(t, 0n, payer)).toThrow(RangeError);
    expect(() => buildTabTransaction(t, 100_000_001n, payer)).toThrow(/limited to 10.0000000 XLM/);
    expect(() => buildTabTransaction(t, 10n, Keypair.random())).toThrow(PaymentFailedError);
    expect(() => buildTabTransaction({ ...t, maxFee: '50' }, 10n, payer)).toThrow(/fee/);
    expect(() => buildTabTransaction({ ...t, memoHex: 'abc' }, 10n, payer)).toThrow(/memo/);
  });
});

describe('buildChainPayment', () => {
  it('pays the request with its memo, as submitXdr checks it', () => {
    const request = { amountStroops: 1_000_000n, destination: bridge.publicKey(), memoHex };
    const tx: Transaction = buildChainPayment(request, payer, 41n, PASSPHRASE, { feeStroops: 200n });
    const parsed = parseTransaction(tx.toXDR(), PASSPHRASE);
    expect(parsed.tx.sequence).toBe('42');
    expect(parsed.tx.fee).toBe('200');
    const m = matchPayment(parsed.tx, { destination: bridge.publicKey(), amount: 1_000_000n, memoHash: memoHex });
    expect(m).toEqual({ opIndex: 0, from: payer.publicKey(), amount: 1_000_000n });
    expect(() => requireSignatures(parsed, PASSPHRASE, [payer.publicKey()])).not.toThrow();
    expect(Number(parsed.tx.timeBounds?.maxTime)).toBeGreaterThan(Date.now() / 1000);
    expect(TransactionBuilder.fromXDR(tx.toXDR(), PASSPHRASE).hash()).toEqual(tx.hash());
  });
});

describe('bridge-api schemas', () => {
  const request: PaymentRequest = {
    id: 'req_abc', service: 'tor', sessionId: 'ses_1', amount: 1_000_000n, asset: 'native', destination: bridge.publicKey(),
    memoHash: memoHex, creditBytes: 100 * 1024 * 1024, createdAt: Date.now(), expiresAt: Date.now() + 900_000, status: 'open',
  };

  it('reads the bridge\'s requestJson', () => {
    const r = PaymentRequestSchema.parse(requestJson(request, PASSPHRASE));
    expect(r).toEqual({
      id: 'req_abc', status: 'open', amountStroops: 1_000_000n, destination: bridge.publicKey(), memoHex, creditBytes: 100 * 1024 * 1024,
      networkPassphrase: PASSPHRASE, expiresAt: request.expiresAt, sessionId: undefined,
    });
  });

  it('reads the snake_case spelling of the brief (memo in hex, memo_base64)', () => {
    const r = PaymentRequestSchema.parse({
      id: 'req_abc', service: 'tor', amount: '0.1000000', asset: 'native', destination: bridge.publicKey(), memo_type: 'hash',
      memo: memoHex, memo_base64: Buffer.from(memoHex, 'hex').toString('base64'), network_passphrase: PASSPHRASE,
      expires_at: new Date(request.expiresAt).toISOString(), credit_bytes: 1024, uri: 'web+stellar:pay?x', session_id: 'ses_1',
    });
    expect(r).toMatchObject({ amountStroops: 1_000_000n, memoHex, creditBytes: 1024, networkPassphrase: PASSPHRASE, sessionId: 'ses_1' });
    expect(camelKeys({ a_b: 1, aB: 2 })).toEqual({ aB: 2 });
  });

  it.each([
    ['another asset', { asset: 'USDC' }, /native/],
    ['a text memo', { memoType: 'MEMO_TEXT' }, /MEMO_HASH/],
    ['no amount', { amount: undefined, amountStroops: undefined }, /amount/],
    ['amounts that disagree', { amountStroops: '5' }, /disagree/],
    ['a zero amount', { amount: '0.0000000', amountStroops: '0' }, /positive/],
    ['a short memo', { memo: 'AAAA', memoHex: undefined }, /32-byte memo/],
    ['a bad destination', { destination: 'GNOPE' }, /Stellar account/],
    ['no passphrase', { networkPassphrase: '' }, /networkPassphrase/],
  ])('refuses %s', (_what, over, message) => {
    const r = PaymentRequestSchema.safeParse({ ...requestJson(request, PASSPHRASE), ...over });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });

  it('reads the bridge\'s TabInfo', () => {
    const t = TabSchema.parse(tabInfo({ amount: '1234' }));
    expect(t).toEqual({
      id: 'tab_x', requestId: 'req_x', payer: payer.publicKey(), account: bridge.publicKey(), sequence: 4294967300n, memoHex,
      limit: 100_000_000n, amount: 1234n, maxFee: TAB_MAX_FEE_STROOPS, minRemainingSeconds: TAB_MIN_REMAINING_SECONDS,
      networkPassphrase: PASSPHRASE, status: 'open',
    });
    expect(TabSchema.safeParse(tabInfo({ sequence: '-1' })).success).toBe(false);
    expect(TabSchema.safeParse({ ...tabInfo(), memoHex: undefined, memo: 'short' }).success).toBe(false);
  });

  it('credit of a partial amount at the request\'s price', () => {
    expect(creditFor(500_000n, { amountStroops: 1_000_000n, creditBytes: 1024 })).toBe(512);
    expect(creditFor(1n, { amountStroops: 1_000_000n, creditBytes: undefined })).toBeUndefined();
    expect(formatXlm(1n)).toBe('0.0000001');
  });
});
