// Authorisation of operation-level source accounts ("tab mode": the payee is the transaction's
// source, the payer is the payment operation's source, both sign) and fee-bump envelopes.
import { Account, Horizon, Keypair, TransactionBuilder, type TransactionSource } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from './ledger.js';
import { balanceOf, fundedAccount, horizonFor, paymentTx, submissionError, type Funded } from './testing.js';

let ledger: LedgerHandle;
let server: Horizon.Server;
let payee: Funded;
let payer: Funded;

beforeAll(async () => {
  ledger = await startLedger();
  server = horizonFor(ledger);
});
afterAll(async () => {
  await ledger.close();
});
beforeEach(async () => {
  payee = await fundedAccount(ledger);
  payer = await fundedAccount(ledger);
});

async function codesOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return submissionError(e).codes;
  }
  throw new Error('the submission succeeded');
}

/** A tab: tx source = payee (pays the fee, sequence), payment op source = payer (payer → payee). */
function tab(payeeAccount: TransactionSource, amount: string, signers: Keypair[]) {
  return paymentTx(
    payeeAccount,
    ledger.networkPassphrase,
    { destination: payee.address, amount, source: payer.address },
    { signers },
  );
}

describe('tab mode', () => {
  it('applies a payer → payee payment in a payee-sourced transaction signed by both', async () => {
    const payeeAccount = await server.loadAccount(payee.address);
    const seq = BigInt(payeeAccount.sequence);
    const payerSeq = (await server.loadAccount(payer.address)).sequence;
    const r = await server.submitTransaction(tab(payeeAccount, '3', [payee.keypair, payer.keypair]));
    expect(r.successful).toBe(true);
    expect(await balanceOf(server, payee.address)).toBe('10002.9999900'); // + 3, − the fee it paid
    expect(await balanceOf(server, payer.address)).toBe('9997.0000000');
    expect(BigInt((await server.loadAccount(payee.address)).sequence)).toBe(seq + 1n);
    expect((await server.loadAccount(payer.address)).sequence).toBe(payerSeq); // the payer's is untouched
    const page = await server.payments().forAccount(payer.address).order('desc').limit(1).call();
    expect(page.records[0] as Horizon.ServerApi.PaymentOperationRecord).toMatchObject({
      type: 'payment',
      source_account: payer.address,
      from: payer.address,
      to: payee.address,
      amount: '3.0000000',
      transaction_hash: r.hash,
    });
    const tx = await server.transactions().transaction(r.hash).call();
    expect(tx.source_account).toBe(payee.address);
  });

  it('refuses the tab without the payer’s signature (op_bad_auth), changing nothing', async () => {
    const payeeAccount = await server.loadAccount(payee.address);
    const seq = payeeAccount.sequence;
    const codes = await codesOf(server.submitTransaction(tab(payeeAccount, '3', [payee.keypair])));
    expect(codes).toEqual({ transaction: 'tx_failed', operations: ['op_bad_auth'] });
    expect((await server.loadAccount(payee.address)).sequence).toBe(seq);
    expect(await balanceOf(server, payer.address)).toBe('10000.0000000');
    expect(await balanceOf(server, payee.address)).toBe('10000.0000000');
  });

  it('refuses the tab without the payee’s signature (tx_bad_auth)', async () => {
    const codes = await codesOf(server.submitTransaction(tab(await server.loadAccount(payee.address), '3', [payer.keypair])));
    expect(codes).toEqual({ transaction: 'tx_bad_auth' });
  });

  it('settles one of several tabs sharing the payee’s sequence number; the others get tx_bad_seq', async () => {
    const loaded = await server.loadAccount(payee.address);
    const tabs = ['1', '2', '3.5'].map((amount) =>
      tab(new Account(payee.address, loaded.sequence), amount, [payee.keypair, payer.keypair]),
    );
    const last = tabs.at(-1)!;
    await server.submitTransaction(last);
    expect(await codesOf(server.submitTransaction(tabs[0]!))).toEqual({ transaction: 'tx_bad_seq' });
    expect(await balanceOf(server, payer.address)).toBe('9996.5000000');
  });
});

describe('fee bump', () => {
  it('applies the inner transaction; the fee source pays (base fee × (ops + 1))', async () => {
    const sponsor = await fundedAccount(ledger);
    const innerSeq = BigInt((await server.loadAccount(payer.address)).sequence);
    const inner = paymentTx(
      await server.loadAccount(payer.address),
      ledger.networkPassphrase,
      { destination: payee.address, amount: '7' },
      { signers: [payer.keypair] },
    );
    const fb = TransactionBuilder.buildFeeBumpTransaction(sponsor.keypair, '200', inner, ledger.networkPassphrase);
    fb.sign(sponsor.keypair);
    const r = await server.submitTransaction(fb);
    expect(r.successful).toBe(true);
    expect(r.hash).toBe(Buffer.from(fb.hash()).toString('hex'));
    expect(await balanceOf(server, sponsor.address)).toBe('9999.9999800');
    expect(await balanceOf(server, payer.address)).toBe('9993.0000000');
    expect(await balanceOf(server, payee.address)).toBe('10007.0000000');
    expect(BigInt((await server.loadAccount(payer.address)).sequence)).toBe(innerSeq + 1n);

    const innerHash = Buffer.from(inner.hash()).toString('hex');
    const byInner = (await (await fetch(`${ledger.url}/transactions/${innerHash}`)).json()) as Record<string, unknown>;
    expect(byInner).toMatchObject({
      hash: innerHash,
      fee_account: sponsor.address,
      source_account: payer.address,
      fee_charged: '200',
      fee_bump_transaction: { hash: r.hash },
      inner_transaction: { hash: innerHash, max_fee: '100' },
    });
  });

  it('reports an inner failure as tx_fee_bump_inner_failed with the inner code', async () => {
    const sponsor = await fundedAccount(ledger);
    const stale = new Account(payer.address, '1');
    const inner = paymentTx(stale, ledger.networkPassphrase, { destination: payee.address, amount: '1' }, { signers: [payer.keypair] });
    const fb = TransactionBuilder.buildFeeBumpTransaction(sponsor.keypair, '200', inner, ledger.networkPassphrase);
    fb.sign(sponsor.keypair);
    expect(await codesOf(server.submitTransaction(fb))).toEqual({
      transaction: 'tx_fee_bump_inner_failed',
      inner_transaction: 'tx_bad_seq',
    });
    expect(await balanceOf(server, sponsor.address)).toBe('10000.0000000');
  });

  it('refuses a fee bump the fee source did not sign (tx_bad_auth)', async () => {
    const sponsor = await fundedAccount(ledger);
    const inner = paymentTx(
      await server.loadAccount(payer.address),
      ledger.networkPassphrase,
      { destination: payee.address, amount: '1' },
      { signers: [payer.keypair] },
    );
    const fb = TransactionBuilder.buildFeeBumpTransaction(sponsor.keypair, '200', inner, ledger.networkPassphrase);
    expect(await codesOf(server.submitTransaction(fb))).toEqual({ transaction: 'tx_bad_auth' });
  });
});
