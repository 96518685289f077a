// How fast the ledger applies payments. The rates are printed, not asserted: this 2-core machine is shared,
// and a load spike would make any bound flaky. What is asserted is that every payment landed exactly once.
import { Account } from '@stellar/stellar-sdk';
import { performance } from 'node:perf_hooks';
import { startLedger, type LedgerHandle } from './ledger.js';
import { balanceOf, fundedAccount, horizonFor, paymentTx } from './testing.js';

let ledger: LedgerHandle;
beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(async () => {
  await ledger.close();
});

async function post(envelope: string): Promise<number> {
  const res = await fetch(`${ledger.url}/transactions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `tx=${encodeURIComponent(envelope)}`,
  });
  await res.arrayBuffer();
  return res.status;
}

it('applies signed payments, sequentially and from parallel clients (rates printed)', async () => {
  const server = horizonFor(ledger);
  const chains = 8;
  const perChain = 100;
  const dest = await fundedAccount(ledger);
  const payers = await Promise.all(Array.from({ length: chains }, () => fundedAccount(ledger)));
  // Pre-signed chains of payments (signing with the SDK is the slow part, and not the ledger's).
  const envelopes = await Promise.all(
    payers.map(async (p) => {
      const loaded = await server.loadAccount(p.address);
      const account = new Account(p.address, loaded.sequence);
      return Array.from({ length: perChain }, () =>
        paymentTx(account, ledger.networkPassphrase, { destination: dest.address, amount: '0.01' }, { signers: [p.keypair] }).toXDR(),
      );
    }),
  );

  // 1. One client, one submission at a time (raw HTTP POST).
  const t0 = performance.now();
  for (const e of envelopes[0]!) expect(await post(e)).toBe(200);
  const sequential = perChain / ((performance.now() - t0) / 1000);

  // 2. Seven clients in parallel, each submitting its own chain in order.
  const t1 = performance.now();
  await Promise.all(
    envelopes.slice(1).map(async (chain) => {
      for (const e of chain) expect(await post(e)).toBe(200);
    }),
  );
  const parallel = ((chains - 1) * perChain) / ((performance.now() - t1) / 1000);

  // 3. The SDK's own submitTransaction (its SEP-29 check adds an account lookup per payment).
  const payer = await fundedAccount(ledger);
  const account = await server.loadAccount(payer.address);
  const sdkTxs = Array.from({ length: 50 }, () =>
    paymentTx(account, ledger.networkPassphrase, { destination: dest.address, amount: '0.01' }, { signers: [payer.keypair] }),
  );
  const t2 = performance.now();
  for (const tx of sdkTxs) await server.submitTransaction(tx);
  const sdk = sdkTxs.length / ((performance.now() - t2) / 1000);

  console.log(
    `ledger throughput: ${sequential.toFixed(0)} payments/s sequential (raw POST), ` +
      `${parallel.toFixed(0)}/s with 7 parallel clients, ${sdk.toFixed(0)}/s via SDK submitTransaction`,
  );
  // 8 × 100 raw + 50 SDK payments of 0.01 XLM each.
  expect(await balanceOf(server, dest.address)).toBe('10008.5000000');
});
