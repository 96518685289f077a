// What the bridge keeps of payments it saw for a request and did not credit: a late one from the real
// payment stream of the local ledger, one in another asset, once per transaction, and a bounded list.
import { Asset, Keypair, Memo, Networks, Operation, TransactionBuilder, Account } from '@stellar/stellar-sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLedger, type LedgerHandle } from '../devnet/ledger/ledger.js';
import { fundedAccount, payUri } from '../devnet/ledger/testing.js';
import { createLogger } from '../log/logger.js';
import { PaymentError } from './errors.js';
import { PaymentsService } from './payments-service.js';
import { noteFor, RequestNotes } from './request-notes.js';
import { PaymentStore } from './store.js';
import { testConfig } from './test-support/fixtures.js';
import type { PaymentRequest } from './types.js';

describe('request notes', () => {
  let ledger: LedgerHandle;
  const dir = mkdtempSync(join(tmpdir(), 'torplus-notes-'));
  beforeAll(async () => {
    ledger = await startLedger({ port: 0 });
  });
  afterAll(async () => {
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('notes a payment that reached the ledger after its request expired, and credits nothing', async () => {
    const bridge = await fundedAccount(ledger);
    const visitor = await fundedAccount(ledger);
    // The bridge's clock is 20 minutes behind the ledger's: its 60-second request is long expired when paid.
    const payments = new PaymentsService({
      config: testConfig(bridge.keypair.secret(), { horizonUrl: ledger.url, requestTtlSeconds: 60 }),
      dataDir: join(dir, 'late'), log: createLogger({ level: 'error' }), now: () => Date.now() - 20 * 60_000,
    });
    await payments.start();
    try {
      const { request } = await payments.requestPayment('circuit:9', 'tor');
      await payUri(ledger, visitor.keypair, payments.paymentUri(request));
      for (let i = 0; i < 100 && (await payments.notesOf(request.id)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await payments.notesOf(request.id)).toEqual([{ kind: 'expired', received: '0.1000000' }]);
      expect((await payments.earnings()).receipts).toBe(0);
      expect((await payments.getRequest(request.id))?.status).not.toBe('paid');
    } finally {
      await payments.stop();
    }
  });

  it('keeps one note per transaction, at most five per request', () => {
    const store = PaymentStore.open(join(dir, 'bounded'));
    try {
      const notes = new RequestNotes(store);
      const r = request();
      store.insertSession({ id: r.sessionId, tokenHash: Buffer.alloc(32, 1), visitorKey: 'circuit:1', createdAt: 0 });
      store.insertRequest(r, 'circuit:1');
      notes.add(r.id, 'tx1', { kind: 'short', received: '1', asked: '2' }, 1);
      notes.add(r.id, 'tx1', { kind: 'short', received: '1', asked: '2' }, 2);
      expect(notes.of(r.id)).toHaveLength(1);
      for (let i = 2; i < 10; i++) notes.add(r.id, `tx${i}`, { kind: 'short', received: String(i), asked: '9' }, i);
      expect(notes.of(r.id)).toHaveLength(5);
    } finally {
      store.close();
    }
  });

  it('describes a payment in another asset, and says nothing for refusals a visitor cannot act on', () => {
    const bridge = Keypair.random().publicKey();
    const issuer = Keypair.random().publicKey();
    const tx = new TransactionBuilder(new Account(Keypair.random().publicKey(), '1'), { fee: '100', networkPassphrase: Networks.TESTNET })
      .addOperation(Operation.payment({ destination: bridge, asset: new Asset('USDC', issuer), amount: '5' }))
      .addMemo(Memo.hash('ab'.repeat(32)))
      .setTimeout(60)
      .build();
    const r = request();
    expect(noteFor(new PaymentError('wrong_asset', 'x'), tx, r, bridge)).toEqual({ kind: 'asset', received: '5.0000000', asset: 'USDC' });
    expect(noteFor(new PaymentError('transaction_failed', 'x'), tx, r, bridge)).toBeUndefined();
    expect(noteFor(new PaymentError('wrong_amount', 'x'), tx, r, Keypair.random().publicKey())).toBeUndefined();
  });
});

function request(): PaymentRequest {
  return {
    id: 'req_notes_1', service: 'tor', sessionId: 'ses_notes', amount: 1_000_000n, asset: 'native', destination: 'G', memoHash: 'cd'.repeat(32),
    creditBytes: 1, createdAt: 0, expiresAt: 1, status: 'open',
  };
}
