// PeerPayer against the local ledger: what it signs, what it declines and why, the budget, and one
// payment at a time.
import { Keypair, TransactionBuilder, type Transaction } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from '../../devnet/ledger/ledger.js';
import { HorizonClient } from '../../payments/horizon.js';
import { requestJson } from '../../payments/payment-requests.js';
import type { PaymentRequest } from '../../payments/types.js';
import { PeerPayer, type PeerPayerOptions } from './peer-payer.js';

let ledger: LedgerHandle;
let horizon: HorizonClient;
let payerKey: Keypair;
const server = Keypair.random().publicKey();
const signal = () => AbortSignal.timeout(10_000);

beforeAll(async () => {
  ledger = await startLedger();
  horizon = new HorizonClient(ledger.url);
  payerKey = Keypair.random();
  await ledger.friendbot(payerKey.publicKey());
});
afterAll(() => ledger.close());

function request(over: Partial<PaymentRequest> = {}, passphrase = ledger.networkPassphrase): Record<string, unknown> {
  const now = Date.now();
  const r: PaymentRequest = {
    id: 'req_test', service: 'ipfs', sessionId: 'ses_test', amount: 10_000n, asset: 'native', destination: server,
    memoHash: 'cd'.repeat(32), creditBytes: 1024 * 1024, createdAt: now, expiresAt: now + 900_000, status: 'open', ...over,
  };
  return requestJson(r, passphrase);
}
const payer = (over: Partial<PeerPayerOptions> = {}) => new PeerPayer({ keypair: payerKey, ledger: horizon, maxSpendStroops: 100_000n, ...over });
async function decline(p: PeerPayer, raw: Record<string, unknown>, peer = 'peerA'): Promise<string> {
  const a = await p.answer(peer, raw, signal());
  if (!('decline' in a)) throw new Error('expected a decline');
  return a.decline;
}

describe('PeerPayer', () => {
  it("signs a payment of the request from its own account at the ledger's sequence, and counts it", async () => {
    const p = payer();
    const answer = await p.answer('peerA', request(), signal());
    if (!('xdr' in answer)) throw new Error(answer.decline);
    const tx = TransactionBuilder.fromXDR(answer.xdr, ledger.networkPassphrase) as Transaction;
    const account = (await horizon.account(payerKey.publicKey()))!;
    expect(tx.source).toBe(payerKey.publicKey());
    expect(BigInt(tx.sequence)).toBe(account.sequence + 1n);
    expect(tx.operations).toEqual([expect.objectContaining({ type: 'payment', destination: server, amount: '0.0010000' })]);
    expect(Buffer.from(tx.memo.value as Buffer).toString('hex')).toBe('cd'.repeat(32));
    expect(tx.signatures).toHaveLength(1);
    expect(p.spentStroops).toBe(10_000n);
    expect(p.paidStroops).toBe(0n);
    answer.settled?.({ paid: true, transactionHash: 'ab'.repeat(32), amountStroops: 10_000n, creditBytes: 1 << 20 });
    expect(p.paidStroops).toBe(10_000n);
    expect(p.records().get('peerA')).toEqual({ askedStroops: 10_000n, sentStroops: 10_000n, paidStroops: 10_000n, lastDecline: undefined });
  });

  it('declines, saying why, whatever does not look sane', async () => {
    const p = payer({ maxRequestStroops: 50_000n, maxPricePerMibStroops: 20_000n });
    expect(await decline(payer({ keypair: undefined }), request())).toMatch(/no Stellar seed configured.*set SEED or SEED_FILE/);
    expect(await decline(p, { id: 'x', destination: 'nope' })).toMatch(/^malformed payment request: destination/);
    expect(await decline(p, request({ service: 'tor' }))).toMatch(/only requests for 'ipfs'/);
    expect(await decline(p, request({ expiresAt: Date.now() - 1 }))).toMatch(/has expired/);
    expect(await decline(p, request({ status: 'paid' }))).toMatch(/is paid/);
    expect(await decline(p, request({}, 'Public Global Stellar Network ; September 2015'))).toMatch(/for the network "Public Global.*but this node pays on "TorPlus Local Ledger/);
    expect(await decline(p, request({ destination: payerKey.publicKey() }))).toMatch(/this node's own/);
    expect(await decline(p, request({ amount: 60_000n, creditBytes: 4 << 20 }))).toMatch(/asks 0\.006 XLM, more than one payment to a peer may be \(0\.005 XLM\)/);
    expect(await decline(p, request({ amount: 30_000n }))).toMatch(/asks 0\.003 XLM per MiB, more than the 0\.002 XLM this node pays/);
    expect(await decline(payer({ mayPay: () => 'this node has fetched nothing from that peer' }), request())).toBe('this node has fetched nothing from that peer');
    const stranger = Keypair.random();
    expect(await decline(payer({ keypair: stranger }), request())).toMatch(new RegExp(`account ${stranger.publicKey()} does not exist.*fund it`));
    expect(p.spentStroops).toBe(0n);
    expect(p.records().get('peerA')!.lastDecline).toMatch(/this node's own|per MiB/);
  });

  it('keeps to its budget, and a new budget starts from nothing', async () => {
    const p = payer({ maxSpendStroops: 25_000n });
    for (let i = 0; i < 2; i++) {
      const a = await p.answer('peerA', request({ id: `req_${i}` }), signal());
      expect('xdr' in a).toBe(true);
      if ('xdr' in a) a.settled?.({ paid: false, reason: 'test' });
    }
    expect(await decline(p, request({ id: 'req_3' }))).toMatch(/over budget: asks 0\.001 XLM, 0\.0005 XLM of FILL_MAX_SPEND 0\.0025 XLM left/);
    expect(p.spentStroops).toBe(20_000n);
    expect(p.leftStroops).toBe(5_000n);
    p.resetBudget();
    expect(p.leftStroops).toBe(25_000n);
    expect('xdr' in (await p.answer('peerA', request({ id: 'req_4' }), signal()))).toBe(true);
  });

  it('pays one request at a time: the next waits until the previous one is settled', async () => {
    const p = payer();
    const first = await p.answer('peerA', request({ id: 'req_a' }), signal());
    let secondDone = false;
    const second = p.answer('peerB', request({ id: 'req_b' }), signal()).then((a) => {
      secondDone = true;
      return a;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(secondDone).toBe(false);
    if ('xdr' in first) first.settled?.({ paid: false, reason: 'refused' });
    expect('xdr' in (await second)).toBe(true);
  });

  it('gives up waiting its turn when the asker gives up', async () => {
    const p = payer();
    await p.answer('peerA', request({ id: 'req_c' }), signal()); // never settled
    const a = await p.answer('peerB', request({ id: 'req_d' }), AbortSignal.timeout(150));
    expect(a).toEqual({ decline: expect.stringMatching(/could not pay: timed out waiting for an earlier payment/) });
  });
});
