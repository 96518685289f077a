import { randomBytes } from 'node:crypto';
import { Account, Asset, Keypair, Memo, MuxedAccount, Networks, Operation, TransactionBuilder, xdr } from '@stellar/stellar-sdk';
import { PaymentError } from './errors.js';
import { paymentTransaction, paymentXdr, tabXdr } from './test-support/fixtures.js';
import {
  checkRequestPayable,
  checkTimeBounds,
  ed25519Key,
  matchPayment,
  parseTransaction,
  requireSignatures,
  signedBy,
  verifyTabTransaction,
  type TabTerms,
} from './verify.js';

const LOCAL = 'TorPlus Local Ledger ; 2026';
const bridge = Keypair.random();
const payer = Keypair.random();
const memo = randomBytes(32).toString('hex');
const NOW = 1_800_000_000;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PaymentError);
    expect((err as PaymentError).message.length).toBeGreaterThan(10);
    return (err as PaymentError).code;
  }
  throw new Error('expected a PaymentError');
}

const base = { source: payer, sequence: 41n, destination: bridge.publicKey(), amount: 1_000_000n, memoHex: memo, passphrase: LOCAL };
const expected = { destination: bridge.publicKey(), amount: 1_000_000n, memoHash: memo };

describe('parseTransaction', () => {
  it.each([
    ['undefined', undefined],
    ['a number', 42],
    ['empty', ''],
    ['not base64', 'hello world!'],
    ['base64 garbage', Buffer.from('not an envelope at all').toString('base64')],
    ['truncated', paymentXdr(base).slice(0, 100)],
    ['huge', 'A'.repeat(70_000)],
  ])('refuses %s as malformed_xdr', (_name, xdr) => {
    expect(code(() => parseTransaction(xdr, LOCAL))).toBe('malformed_xdr');
  });

  it('hashes like the SDK, and unwraps a fee bump', () => {
    const tx = paymentTransaction(base);
    const p = parseTransaction(tx.toXDR(), LOCAL);
    expect(p.hash).toBe(Buffer.from(tx.hash()).toString('hex'));
    const bump = TransactionBuilder.buildFeeBumpTransaction(bridge, '200', tx, LOCAL);
    bump.sign(bridge);
    const pb = parseTransaction(bump.toXDR(), LOCAL);
    expect(pb.hash).toBe(Buffer.from(bump.hash()).toString('hex'));
    expect(pb.tx.source).toBe(payer.publicKey());
    expect(pb.envelope).not.toBe(pb.tx);
  });
});

describe('matchPayment', () => {
  it('finds the paying operation', () => {
    const m = matchPayment(parseTransaction(paymentXdr({ ...base, amount: 2_000_000n }), LOCAL).tx, expected);
    expect(m).toEqual({ opIndex: 0, from: payer.publicKey(), amount: 2_000_000n });
  });

  it('names each mismatch', () => {
    const tx = (over: Partial<typeof base> & Record<string, unknown>) => parseTransaction(paymentXdr({ ...base, ...over }), LOCAL).tx;
    expect(code(() => matchPayment(tx({ memoHex: undefined }), expected))).toBe('wrong_memo');
    expect(code(() => matchPayment(tx({ memoHex: undefined, memoText: 'hi' }), expected))).toBe('wrong_memo');
    expect(code(() => matchPayment(tx({ memoHex: randomBytes(32).toString('hex') }), expected))).toBe('wrong_memo');
    expect(code(() => matchPayment(tx({ destination: Keypair.random().publicKey() }), expected))).toBe('wrong_destination');
    expect(code(() => matchPayment(tx({ asset: new Asset('USD', Keypair.random().publicKey()) }), expected))).toBe('wrong_asset');
    expect(code(() => matchPayment(tx({ amount: 999_999n }), expected))).toBe('wrong_amount');
  });

  it('refuses a transaction without a payment', () => {
    const t = new TransactionBuilder(new Account(payer.publicKey(), '1'), { fee: '100', networkPassphrase: LOCAL })
      .addOperation(Operation.bumpSequence({ bumpTo: '5' }))
      .addMemo(Memo.hash(memo))
      .setTimeout(30)
      .build();
    expect(code(() => matchPayment(t, expected))).toBe('wrong_shape');
  });

  it('accepts a muxed destination of the bridge', () => {
    const muxed = new MuxedAccount(new Account(bridge.publicKey(), '0'), '7').accountId();
    const m = matchPayment(parseTransaction(paymentXdr({ ...base, destination: muxed }), LOCAL).tx, expected);
    expect(m.amount).toBe(1_000_000n);
  });
});

describe('signatures (node:crypto Ed25519)', () => {
  it('agrees with the SDK on valid and invalid signatures', () => {
    const tx = paymentTransaction(base);
    const hash = tx.hash();
    expect(signedBy(hash, tx.signatures, payer.publicKey())).toBe('valid');
    expect(payer.verify(hash, tx.signatures[0]!.signature.value)).toBe(true);
    expect(signedBy(hash, tx.signatures, bridge.publicKey())).toBe('missing');
    const other = Buffer.from(hash);
    other[0]! ^= 1;
    expect(signedBy(other, tx.signatures, payer.publicKey())).toBe('invalid');
    expect(ed25519Key(payer.publicKey())).toBe(ed25519Key(payer.publicKey())); // cached
  });

  it('reports unsigned, badly signed and other-network transactions', () => {
    const unsigned = parseTransaction(paymentXdr({ ...base, signers: [] }), LOCAL);
    expect(code(() => requireSignatures(unsigned, LOCAL, [payer.publicKey()]))).toBe('bad_signature');
    const forgedBy = Keypair.random();
    // A signature under the payer's hint but by another key.
    const forged = paymentTransaction({ ...base, signers: [] });
    const sig = forgedBy.sign(forged.hash());
    forged.addDecoratedSignature(new xdr.DecoratedSignature({ hint: payer.signatureHint(), signature: sig }));
    expect(code(() => requireSignatures(parseTransaction(forged.toXDR(), LOCAL), LOCAL, [payer.publicKey()]))).toBe('bad_signature');
    const testnet = parseTransaction(paymentXdr({ ...base, passphrase: Networks.TESTNET }), LOCAL);
    const err = (() => {
      try {
        requireSignatures(testnet, LOCAL, [payer.publicKey()]);
      } catch (e) {
        return e as PaymentError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('wrong_network');
    expect(err?.message).toContain('test network');
    requireSignatures(parseTransaction(paymentXdr(base), LOCAL), LOCAL, [payer.publicKey()]);
  });
});

describe('time', () => {
  const tx = (minTime: number, maxTime: number) =>
    parseTransaction(paymentXdr({ ...base, timebounds: { minTime, maxTime } }), LOCAL).tx;
  it('checks the bounds', () => {
    const rule = { requireMaxTime: true, minRemainingSeconds: 90 };
    expect(checkTimeBounds(tx(0, NOW + 100), NOW, rule)).toBe(NOW + 100);
    expect(code(() => checkTimeBounds(tx(0, NOW + 50), NOW, rule))).toBe('bad_time_bounds');
    expect(code(() => checkTimeBounds(tx(0, NOW - 1), NOW, rule))).toBe('bad_time_bounds');
    expect(code(() => checkTimeBounds(tx(NOW + 60, NOW + 600), NOW, rule))).toBe('bad_time_bounds');
    expect(code(() => checkTimeBounds(tx(0, 0), NOW, rule))).toBe('bad_time_bounds');
    expect(checkTimeBounds(tx(0, 0), NOW, { requireMaxTime: false, minRemainingSeconds: 0 })).toBe(0);
  });

  it('refuses expired and paid requests', () => {
    expect(code(() => checkRequestPayable({ id: 'r', status: 'open', expiresAt: 1000 }, 1000))).toBe('expired_request');
    expect(code(() => checkRequestPayable({ id: 'r', status: 'expired', expiresAt: 5000 }, 1000))).toBe('expired_request');
    expect(code(() => checkRequestPayable({ id: 'r', status: 'paid', expiresAt: 5000 }, 1000))).toBe('already_paid');
    checkRequestPayable({ id: 'r', status: 'open', expiresAt: 5000 }, 1000);
  });
});

describe('verifyTabTransaction', () => {
  const terms: TabTerms = {
    bridge: bridge.publicKey(), sequence: 1001n, payer: payer.publicKey(), memoHash: memo, lastAmount: 50_000n,
    limit: 10_000_000n, maxFee: 10_000n, minRemainingSeconds: 90,
  };
  const tab = { bridge: bridge.publicKey(), sequence: 1001n, payer, amount: 60_000n, memoHex: memo, passphrase: LOCAL, maxTime: NOW + 600 };
  const verify = (over: Partial<typeof tab> & Record<string, unknown>, t: Partial<TabTerms> = {}) =>
    verifyTabTransaction(tabXdr({ ...tab, ...over }), { ...terms, ...t }, LOCAL, NOW);

  it('accepts the next cumulative transaction', () => {
    const v = verify({});
    expect(v.amount).toBe(60_000n);
    expect(v.maxTime).toBe(NOW + 600);
  });

  it('refuses each way a tab transaction can be wrong', () => {
    const other = Keypair.random();
    expect(code(() => verifyTabTransaction('garbage!', terms, LOCAL, NOW))).toBe('malformed_xdr');
    expect(code(() => verify({ sequence: 1002n }))).toBe('wrong_sequence');
    expect(code(() => verify({ bridge: other.publicKey(), destination: bridge.publicKey() }))).toBe('wrong_source');
    expect(code(() => verify({ fee: '20000' }))).toBe('bad_fee');
    expect(code(() => verify({ payer: other }))).toBe('wrong_source');
    expect(code(() => verify({ destination: other.publicKey() }))).toBe('wrong_destination');
    expect(code(() => verify({ memoHex: randomBytes(32).toString('hex') }))).toBe('wrong_memo');
    expect(code(() => verify({ maxTime: NOW + 30 }))).toBe('bad_time_bounds');
    expect(code(() => verify({ amount: 50_000n }))).toBe('replay');
    expect(code(() => verify({ amount: 40_000n }))).toBe('not_increasing');
    expect(code(() => verify({ amount: 20_000_000n }))).toBe('over_limit');
    expect(code(() => verify({ signers: [other] }))).toBe('bad_signature');
    expect(code(() => verify({ signers: [] }))).toBe('bad_signature');
    expect(code(() => verify({ passphrase: Networks.PUBLIC }))).toBe('wrong_network');
  });

  it('refuses two operations and fee bumps', () => {
    const t = new TransactionBuilder(new Account(bridge.publicKey(), '1000'), { fee: '100', networkPassphrase: LOCAL, timebounds: { minTime: 0, maxTime: NOW + 600 } })
      .addOperation(Operation.payment({ source: payer.publicKey(), destination: bridge.publicKey(), asset: Asset.native(), amount: '0.006' }))
      .addOperation(Operation.bumpSequence({ bumpTo: '1' }))
      .addMemo(Memo.hash(memo))
      .build();
    t.sign(payer);
    expect(code(() => verifyTabTransaction(t.toXDR(), terms, LOCAL, NOW))).toBe('wrong_shape');
    const inner = TransactionBuilder.fromXDR(tabXdr(tab), LOCAL) as never;
    const bump = TransactionBuilder.buildFeeBumpTransaction(payer, '200', inner, LOCAL);
    bump.sign(payer);
    expect(code(() => verifyTabTransaction(bump.toXDR(), terms, LOCAL, NOW))).toBe('wrong_shape');
  });
});
