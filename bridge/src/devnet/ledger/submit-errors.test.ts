// Failed submissions: each surfaces through the SDK as Horizon's transaction_failed (or
// transaction_malformed) problem with the right result codes.
import {
  Account,
  Asset,
  Horizon,
  Keypair,
  Networks,
  NotFoundError,
  Operation,
  TransactionBuilder,
  type Transaction,
} from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from './ledger.js';
import { balanceOf, fundedAccount, horizonFor, paymentTx, submissionError, type Funded } from './testing.js';

let ledger: LedgerHandle;
let server: Horizon.Server;
let a: Funded;
let b: Funded;

beforeAll(async () => {
  ledger = await startLedger();
  server = horizonFor(ledger);
});
afterAll(async () => {
  await ledger.close();
});
beforeEach(async () => {
  a = await fundedAccount(ledger);
  b = await fundedAccount(ledger);
});

/** Submits through the SDK and returns what its error carries (fails the test if it succeeds). */
async function failure(tx: Transaction | { toEnvelope(): unknown; memo?: unknown }, skipMemoCheck = false) {
  try {
    await server.submitTransaction(tx as Transaction, { skipMemoRequiredCheck: skipMemoCheck });
  } catch (e) {
    return { error: e as Error, ...submissionError(e) };
  }
  throw new Error('the submission succeeded');
}

const pay = async (opts: Parameters<typeof paymentTx>[3] = { signers: [] }, amount = '1', destination?: string) =>
  paymentTx(await server.loadAccount(a.address), ledger.networkPassphrase, { destination: destination ?? b.address, amount }, opts);

describe('rejected before being applied (nothing charged)', () => {
  it('bad sequence number → tx_bad_seq', async () => {
    const loaded = await server.loadAccount(a.address);
    const stale = new Account(a.address, (BigInt(loaded.sequence) + 5n).toString());
    const tx = paymentTx(stale, ledger.networkPassphrase, { destination: b.address, amount: '1' }, { signers: [a.keypair] });
    const f = await failure(tx);
    expect(f.error).toBeInstanceOf(Error);
    expect(f.error.constructor.name).toBe('TransactionFailedError');
    expect((f.error as unknown as { getResultCodes(): unknown }).getResultCodes()).toEqual({ transaction: 'tx_bad_seq', operations: [] });
    expect(f.codes).toEqual({ transaction: 'tx_bad_seq' }); // Horizon omits operations unless tx_failed
    expect(f.status).toBe(400);
    expect(f.type).toBe('https://stellar.org/horizon-errors/transaction_failed');
    expect(await balanceOf(server, a.address)).toBe('10000.0000000');
  });

  it('missing signature → tx_bad_auth', async () => {
    expect((await failure(await pay({ signers: [] }))).codes).toEqual({ transaction: 'tx_bad_auth' });
  });

  it('signed by the wrong key → tx_bad_auth', async () => {
    expect((await failure(await pay({ signers: [Keypair.random()] }))).codes).toEqual({ transaction: 'tx_bad_auth' });
  });

  it('signed for another network (passphrase) → tx_bad_auth', async () => {
    const tx = paymentTx(await server.loadAccount(a.address), Networks.TESTNET, { destination: b.address, amount: '1' }, { signers: [a.keypair] });
    expect((await failure(tx)).codes).toEqual({ transaction: 'tx_bad_auth' });
  });

  it('an extra, unneeded signature → tx_bad_auth_extra', async () => {
    expect((await failure(await pay({ signers: [a.keypair, b.keypair] }))).codes).toEqual({ transaction: 'tx_bad_auth_extra' });
  });

  it('expired time bounds → tx_too_late; not yet valid → tx_too_early', async () => {
    const now = Math.floor(Date.now() / 1000);
    const late = await pay({ signers: [a.keypair], timebounds: { minTime: 0, maxTime: now - 10 } });
    expect((await failure(late)).codes).toEqual({ transaction: 'tx_too_late' });
    const early = await pay({ signers: [a.keypair], timebounds: { minTime: now + 3600, maxTime: 0 } });
    expect((await failure(early)).codes).toEqual({ transaction: 'tx_too_early' });
  });

  it('fee below 100 stroops per operation → tx_insufficient_fee', async () => {
    expect((await failure(await pay({ signers: [a.keypair], fee: '99' }))).codes).toEqual({ transaction: 'tx_insufficient_fee' });
  });

  it('a source account that does not exist → tx_no_source_account', async () => {
    const ghost = Keypair.random();
    const tx = paymentTx(new Account(ghost.publicKey(), '1'), ledger.networkPassphrase, { destination: b.address, amount: '1' }, { signers: [ghost] });
    expect((await failure(tx)).codes).toEqual({ transaction: 'tx_no_source_account' });
  });

  it('a fee the account cannot pay above its reserve → tx_insufficient_balance', async () => {
    // An account holding exactly its minimum balance (1 XLM: 2 × 0.5 XLM base reserve) cannot pay any fee.
    const poor = Keypair.random();
    const create = new TransactionBuilder(await server.loadAccount(a.address), { fee: '100', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.createAccount({ destination: poor.publicKey(), startingBalance: '1' }))
      .setTimeout(60)
      .build();
    create.sign(a.keypair);
    await server.submitTransaction(create);
    const tx = paymentTx(await server.loadAccount(poor.publicKey()), ledger.networkPassphrase, { destination: b.address, amount: '0.0000001' }, { signers: [poor] });
    expect((await failure(tx)).codes).toEqual({ transaction: 'tx_insufficient_balance' });
  });

  it('an unsupported operation → tx_failed / op_not_supported', async () => {
    const tx = new TransactionBuilder(await server.loadAccount(a.address), { fee: '100', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.manageData({ name: 'k', value: 'v' }))
      .setTimeout(60)
      .build();
    tx.sign(a.keypair);
    expect((await failure(tx)).codes).toEqual({ transaction: 'tx_failed', operations: ['op_not_supported'] });
  });

  it('a malformed envelope → 400 transaction_malformed (raw and through the SDK)', async () => {
    const res = await fetch(`${ledger.url}/transactions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'tx=AAAAAgAAAABnot-xdr',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      type: 'https://stellar.org/horizon-errors/transaction_malformed',
      status: 400,
      extras: { envelope_xdr: 'AAAAAgAAAABnot-xdr' },
    });
    const garbage = { memo: { type: 'none' }, operations: [], toEnvelope: () => ({ toXdr: () => 'bm90IGFuIGVudmVsb3Bl' }) };
    const f = await failure(garbage, true);
    expect(f.error.constructor.name).toBe('BadResponseError');
    expect(f.status).toBe(400);
    expect(f.type).toBe('https://stellar.org/horizon-errors/transaction_malformed');
    const missing = await fetch(`${ledger.url}/transactions`, { method: 'POST' });
    expect(missing.status).toBe(400);
  });
});

describe('applied but failed (tx_failed: fee and sequence number consumed, as on Stellar)', () => {
  it('unknown destination → op_no_destination', async () => {
    const seq = BigInt((await server.loadAccount(a.address)).sequence);
    const f = await failure(await pay({ signers: [a.keypair] }, '1', Keypair.random().publicKey()));
    expect(f.codes).toEqual({ transaction: 'tx_failed', operations: ['op_no_destination'] });
    expect(await balanceOf(server, a.address)).toBe('9999.9999900');
    expect(BigInt((await server.loadAccount(a.address)).sequence)).toBe(seq + 1n);
  });

  it('paying more than the balance above the reserve → op_underfunded', async () => {
    const f = await failure(await pay({ signers: [a.keypair] }, '9999.5'));
    expect(f.codes).toEqual({ transaction: 'tx_failed', operations: ['op_underfunded'] });
    expect(await balanceOf(server, b.address)).toBe('10000.0000000');
    expect(await balanceOf(server, a.address)).toBe('9999.9999900');
  });

  it('is listed with successful=false only when include_failed=true', async () => {
    const f = await failure(await pay({ signers: [a.keypair] }, '1', Keypair.random().publicKey()));
    expect(f.codes).toMatchObject({ transaction: 'tx_failed' });
    const hidden = await server.operations().forAccount(a.address).call();
    expect(hidden.records.map((r) => r.type)).toEqual(['create_account']);
    const res = await fetch(`${ledger.url}/accounts/${a.address}/operations?include_failed=true`);
    const page = (await res.json()) as { _embedded: { records: { transaction_successful: boolean }[] } };
    expect(page._embedded.records.map((r) => r.transaction_successful)).toEqual([true, false]);
  });
});

describe('resubmission', () => {
  it('returns the stored result for an already-applied transaction (same hash), without applying it again', async () => {
    const tx = await pay({ signers: [a.keypair] }, '5');
    const first = await server.submitTransaction(tx);
    const again = await server.submitTransaction(tx);
    expect(again.hash).toBe(first.hash);
    expect(again.ledger).toBe(first.ledger);
    expect(await balanceOf(server, b.address)).toBe('10005.0000000');
  });

  it('a different transaction with a used sequence number → tx_bad_seq', async () => {
    const account = await server.loadAccount(a.address);
    const copy = new Account(a.address, account.sequence);
    await server.submitTransaction(paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount: '1' }, { signers: [a.keypair] }));
    const other = paymentTx(copy, ledger.networkPassphrase, { destination: b.address, amount: '2' }, { signers: [a.keypair] });
    expect((await failure(other)).codes).toEqual({ transaction: 'tx_bad_seq' });
  });
});

describe('other operations', () => {
  it('bumpSequence moves the sequence number forward', async () => {
    const account = await server.loadAccount(a.address);
    const target = BigInt(account.sequence) + 1000n;
    const tx = new TransactionBuilder(account, { fee: '100', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.bumpSequence({ bumpTo: target.toString() }))
      .setTimeout(60)
      .build();
    tx.sign(a.keypair);
    await server.submitTransaction(tx);
    expect(BigInt((await server.loadAccount(a.address)).sequence)).toBe(target);
  });

  it('createAccount below the reserve → op_low_reserve; for an existing account → op_already_exists', async () => {
    const build = async (destination: string, startingBalance: string) => {
      const tx = new TransactionBuilder(await server.loadAccount(a.address), { fee: '100', networkPassphrase: ledger.networkPassphrase })
        .addOperation(Operation.createAccount({ destination, startingBalance }))
        .setTimeout(60)
        .build();
      tx.sign(a.keypair);
      return tx;
    };
    expect((await failure(await build(Keypair.random().publicKey(), '0.5'))).codes).toEqual({
      transaction: 'tx_failed',
      operations: ['op_low_reserve'],
    });
    expect((await failure(await build(b.address, '5'))).codes).toEqual({
      transaction: 'tx_failed',
      operations: ['op_already_exists'],
    });
  });

  it('several operations apply together or not at all', async () => {
    const c = Keypair.random();
    const tx = new TransactionBuilder(await server.loadAccount(a.address), { fee: '200', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.createAccount({ destination: c.publicKey(), startingBalance: '5' }))
      .addOperation(Operation.payment({ destination: Keypair.random().publicKey(), asset: Asset.native(), amount: '1' }))
      .setTimeout(60)
      .build();
    tx.sign(a.keypair);
    expect((await failure(tx)).codes).toEqual({ transaction: 'tx_failed', operations: ['op_success', 'op_no_destination'] });
    await expect(server.loadAccount(c.publicKey())).rejects.toBeInstanceOf(NotFoundError);
    expect(await balanceOf(server, a.address)).toBe('9999.9999800');
  });
});
