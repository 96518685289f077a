// A ledger with a data directory keeps accounts, sequence numbers, balances, transactions and payments
// across a restart, and remembers its network passphrase.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Horizon } from '@stellar/stellar-sdk';
import { DB_FILE } from './store.js';
import { startLedger } from './ledger.js';
import { balanceOf, fundedAccount, horizonFor, paymentTx } from './testing.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'torplus-ledger-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

it('keeps its state across a restart with the same data directory', async () => {
  const dataDir = join(root, 'data');
  const first = await startLedger({ dataDir, networkPassphrase: 'Persistence Test ; 2026' });
  let server = horizonFor(first);
  const a = await fundedAccount(first);
  const b = await fundedAccount(first);
  const tx = paymentTx(await server.loadAccount(a.address), first.networkPassphrase, { destination: b.address, amount: '12.5' }, { signers: [a.keypair] });
  const paid = await server.submitTransaction(tx);
  const seqBefore = (await server.loadAccount(a.address)).sequence;
  await first.close();

  expect(statSync(dataDir).mode & 0o777).toBe(0o700);
  expect(statSync(join(dataDir, DB_FILE)).mode & 0o077).toBe(0);

  // No passphrase given: the stored one is used.
  const second = await startLedger({ dataDir });
  try {
    expect(second.networkPassphrase).toBe('Persistence Test ; 2026');
    server = horizonFor(second);
    const account = await server.loadAccount(a.address);
    expect(account.sequence).toBe(seqBefore);
    expect(await balanceOf(server, a.address)).toBe('9987.4999900');
    expect(await balanceOf(server, b.address)).toBe('10012.5000000');
    const stored = await server.transactions().transaction(paid.hash).call();
    expect(stored.successful).toBe(true);
    const payments = await server.payments().forAccount(b.address).call();
    expect(payments.records.map((p) => p.type)).toEqual(['create_account', 'payment']);
    expect((payments.records[1] as Horizon.ServerApi.PaymentOperationRecord).amount).toBe('12.5000000');

    // The ledger goes on from where it stopped, and the restored account can transact.
    const next = await server.submitTransaction(
      paymentTx(account, second.networkPassphrase, { destination: b.address, amount: '1' }, { signers: [a.keypair] }),
    );
    expect(next.ledger).toBe(paid.ledger + 1);
    expect(BigInt(next.paging_token)).toBeGreaterThan(BigInt(paid.paging_token));
  } finally {
    await second.close();
  }
});

it('refuses to open a data directory made for another network passphrase', async () => {
  const dataDir = join(root, 'other');
  const l = await startLedger({ dataDir, networkPassphrase: 'Network One' });
  await l.close();
  await expect(startLedger({ dataDir, networkPassphrase: 'Network Two' })).rejects.toThrow(/created for network passphrase "Network One"/);
});

it('stops when its abort signal fires', async () => {
  const ac = new AbortController();
  const l = await startLedger({ signal: ac.signal });
  expect((await fetch(`${l.url}/`)).status).toBe(200);
  ac.abort();
  await l.close(); // idempotent: resolves once the abort's close is done
  await expect(fetch(`${l.url}/`)).rejects.toThrow();
});
