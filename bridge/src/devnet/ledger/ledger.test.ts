// The local ledger through the SDK's own calls: accounts, payments, transactions, streams, friendbot.
import { Asset, Horizon, Keypair, Memo, Operation, TransactionBuilder } from '@stellar/stellar-sdk';
import { DEFAULT_PASSPHRASE, startLedger, type LedgerHandle } from './ledger.js';
import { balanceOf, fundedAccount, horizonFor, paymentTx, submissionError } from './testing.js';

let ledger: LedgerHandle;
let server: Horizon.Server;

beforeAll(async () => {
  ledger = await startLedger({ port: 0 });
  server = horizonFor(ledger);
});
afterAll(async () => {
  await ledger.close();
});

/** Resolves once `pred` holds for the collected messages, or rejects after `ms`. */
function waitFor<T>(items: T[], pred: (items: T[]) => boolean, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (pred(items)) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out; got ${JSON.stringify(items)}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe('root, fees, ledgers', () => {
  it('answers the root with the passphrase, protocol 22 and a Date header', async () => {
    const res = await fetch(`${ledger.url}/`);
    expect(res.status).toBe(200);
    expect(Math.abs(Date.parse(res.headers.get('date')!) - Date.now())).toBeLessThan(5000);
    const root = (await res.json()) as Record<string, unknown>;
    expect(root).toMatchObject({ network_passphrase: DEFAULT_PASSPHRASE, current_protocol_version: 22 });
    expect(typeof root.history_latest_ledger).toBe('number');
    expect(ledger.networkPassphrase).toBe(DEFAULT_PASSPHRASE);
  });

  it('gives the SDK its base fee, fee stats and server time', async () => {
    expect(await server.fetchBaseFee()).toBe(100);
    const stats = await server.feeStats();
    expect(stats.last_ledger_base_fee).toBe('100');
    expect(stats.fee_charged.p99).toBe('100');
    expect(stats.max_fee.p10).toBe('100');
    const tb = await server.fetchTimebounds(30);
    expect(Math.abs(tb.maxTime - (Math.floor(Date.now() / 1000) + 30))).toBeLessThanOrEqual(2);
  });

  it('lists the latest ledger', async () => {
    const page = await server.ledgers().order('desc').limit(1).call();
    expect(page.records).toHaveLength(1);
    const latest = page.records[0]!;
    const root = (await (await fetch(`${ledger.url}/`)).json()) as { history_latest_ledger: number };
    expect(latest.sequence).toBe(root.history_latest_ledger);
    expect(latest.base_fee_in_stroops).toBe(100);
  });
});

describe('accounts and friendbot', () => {
  it('creates an account with 10,000 XLM that loadAccount reads back', async () => {
    const { address } = await fundedAccount(ledger);
    const acc = await server.loadAccount(address);
    expect(acc.accountId()).toBe(address);
    expect(acc.account_id).toBe(address);
    expect(typeof acc.sequence).toBe('string');
    expect(BigInt(acc.sequence) % (1n << 32n)).toBe(0n); // ledger << 32, as on Stellar
    expect(acc.balances).toEqual([expect.objectContaining({ asset_type: 'native', balance: '10000.0000000' })]);
    expect(acc.signers).toEqual([{ key: address, weight: 1, type: 'ed25519_public_key' }]);
    expect(acc.thresholds).toEqual({ low_threshold: 0, med_threshold: 0, high_threshold: 0 });
    expect(acc.subentry_count).toBe(0);
    expect(acc.data_attr).toEqual({}); // the SEP-29 trap: needs _links.data
  });

  it('shows the funding as a create_account payment from the root account', async () => {
    const { address } = await fundedAccount(ledger);
    const page = await server.payments().forAccount(address).call();
    expect(page.records).toHaveLength(1);
    const rec = page.records[0] as Horizon.ServerApi.CreateAccountOperationRecord;
    expect(rec).toMatchObject({ type: 'create_account', type_i: 0, account: address, starting_balance: '10000.0000000' });
    expect(rec.funder).toBe(Keypair.master(DEFAULT_PASSPHRASE).publicKey());
  });

  it('answers 404 for an unknown account, in Horizon’s problem shape', async () => {
    await expect(server.loadAccount(Keypair.random().publicKey())).rejects.toBeInstanceOf(Error);
    const res = await fetch(`${ledger.url}/accounts/${Keypair.random().publicKey()}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ type: 'https://stellar.org/horizon-errors/not_found', status: 404 });
  });

  it('refuses to fund an existing account or an invalid address (400)', async () => {
    const { address } = await fundedAccount(ledger);
    await expect(ledger.friendbot(address)).rejects.toThrow(/already exists/);
    for (const addr of [address, 'GNOTANADDRESS']) {
      const res = await fetch(`${ledger.url}/friendbot?addr=${addr}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: 'https://stellar.org/horizon-errors/bad_request' });
    }
  });

  it('funds through the SDK’s own friendbot call', async () => {
    const kp = Keypair.random();
    const r = (await server.friendbot(kp.publicKey()).call()) as unknown as { successful: boolean };
    expect(r.successful).toBe(true);
    expect(await balanceOf(server, kp.publicKey())).toBe('10000.0000000');
  });
});

describe('payments', () => {
  it('submits a signed payment: exact balances (fee included), sequence bump, a new ledger', async () => {
    const a = await fundedAccount(ledger);
    const b = await fundedAccount(ledger);
    const account = await server.loadAccount(a.address);
    const seq = BigInt(account.sequence);
    const ledgerBefore = (await server.ledgers().order('desc').limit(1).call()).records[0]!.sequence;
    const tx = paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount: '1.5' }, { signers: [a.keypair] });
    const r = await server.submitTransaction(tx);
    expect(r).toMatchObject({ successful: true, hash: Buffer.from(tx.hash()).toString('hex'), ledger: ledgerBefore + 1 });
    expect(r.envelope_xdr).toBe(tx.toXDR());
    expect(typeof r.paging_token).toBe('string');
    expect(await balanceOf(server, a.address)).toBe('9998.4999900'); // 1.5 XLM + 100 stroops
    expect(await balanceOf(server, b.address)).toBe('10001.5000000');
    expect(BigInt((await server.loadAccount(a.address)).sequence)).toBe(seq + 1n);
  });

  it('serves the transaction by hash, with memo, fee and source', async () => {
    const a = await fundedAccount(ledger);
    const b = await fundedAccount(ledger);
    const memo = Buffer.alloc(32, 7);
    const tx = new TransactionBuilder(await server.loadAccount(a.address), { fee: '100', networkPassphrase: ledger.networkPassphrase })
      .addOperation(Operation.payment({ destination: b.address, asset: Asset.native(), amount: '2' }))
      .addMemo(Memo.hash(memo.toString('hex')))
      .setTimeout(60)
      .build();
    tx.sign(a.keypair);
    const { hash } = await server.submitTransaction(tx);
    const res = await fetch(`${ledger.url}/transactions/${hash}`);
    const t = (await res.json()) as Record<string, unknown>;
    expect(t).toMatchObject({
      hash,
      successful: true,
      memo_type: 'hash',
      memo: memo.toString('base64'),
      source_account: a.address,
      fee_charged: '100',
      envelope_xdr: tx.toXDR(),
    });
    expect(typeof t.ledger).toBe('number');
    expect(Date.parse(t.created_at as string)).toBeGreaterThan(Date.now() - 60_000);
    const viaSdk = await server.transactions().transaction(hash).call();
    expect(viaSdk.memo).toBe(memo.toString('base64'));
    const ops = await server.operations().forTransaction(hash).call();
    expect(ops.records).toEqual([expect.objectContaining({ type: 'payment', amount: '2.0000000', from: a.address, to: b.address })]);
    expect((await (await fetch(`${ledger.url}/transactions/${'0'.repeat(64)}`)).json()) as object).toMatchObject({ status: 404 });
  });

  it('pages payments with cursor, order and limit, following _links.next', async () => {
    const a = await fundedAccount(ledger);
    const b = await fundedAccount(ledger);
    const account = await server.loadAccount(a.address);
    for (const amount of ['1', '2', '3']) {
      await server.submitTransaction(paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount }, { signers: [a.keypair] }));
    }
    const first = await server.payments().forAccount(a.address).order('asc').limit(2).call();
    expect(first.records.map((r) => r.type)).toEqual(['create_account', 'payment']);
    const second = await first.next();
    expect(second.records.map((r) => (r as Horizon.ServerApi.PaymentOperationRecord).amount)).toEqual(['2.0000000', '3.0000000']);
    const tokens = [...first.records, ...second.records].map((r) => BigInt(r.paging_token));
    expect([...tokens].sort((x, y) => (x < y ? -1 : 1))).toEqual(tokens);
    const desc = await server.payments().forAccount(a.address).order('desc').limit(1).call();
    expect((desc.records[0] as Horizon.ServerApi.PaymentOperationRecord).amount).toBe('3.0000000');
    const all = await server.payments().cursor(tokens[1]!.toString()).limit(200).call();
    expect(all.records.every((r) => BigInt(r.paging_token) > tokens[1]!)).toBe(true);
    const rec = second.records[0] as Horizon.ServerApi.PaymentOperationRecord;
    expect(rec).toMatchObject({ type: 'payment', type_i: 1, asset_type: 'native', transaction_successful: true, source_account: a.address });
  });

  it('rejects bad paging parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=201', 'order=up', 'cursor=abc']) {
      const res = await fetch(`${ledger.url}/payments?${q}`);
      expect(res.status).toBe(400);
    }
  });
});

describe('streams', () => {
  it('streams a payment made after the subscription (cursor now)', async () => {
    const a = await fundedAccount(ledger);
    const b = await fundedAccount(ledger);
    const got: Horizon.ServerApi.OperationRecord[] = [];
    const close = server
      .payments()
      .forAccount(b.address)
      .cursor('now')
      .stream({ onmessage: (m) => got.push(m as unknown as Horizon.ServerApi.OperationRecord) });
    try {
      await new Promise((r) => setTimeout(r, 200)); // the subscription is open
      const account = await server.loadAccount(a.address);
      await server.submitTransaction(paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount: '4.25' }, { signers: [a.keypair] }));
      await waitFor(got, (g) => g.length >= 1);
      expect(got).toHaveLength(1); // not the earlier create_account
      expect(got[0]).toMatchObject({ type: 'payment', from: a.address, to: b.address, amount: '4.2500000' });
    } finally {
      close();
    }
  });

  it('streams the missed payments after an explicit cursor, then new ones', async () => {
    const a = await fundedAccount(ledger);
    const b = await fundedAccount(ledger);
    const start = (await server.payments().forAccount(b.address).order('desc').limit(1).call()).records[0]!.paging_token;
    const account = await server.loadAccount(a.address);
    for (const amount of ['1', '2']) {
      await server.submitTransaction(paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount }, { signers: [a.keypair] }));
    }
    const got: Horizon.ServerApi.PaymentOperationRecord[] = [];
    const close = server
      .payments()
      .forAccount(b.address)
      .cursor(start)
      .stream({ onmessage: (m) => got.push(m as unknown as Horizon.ServerApi.PaymentOperationRecord) });
    try {
      await waitFor(got, (g) => g.length >= 2);
      await server.submitTransaction(paymentTx(account, ledger.networkPassphrase, { destination: b.address, amount: '3' }, { signers: [a.keypair] }));
      await waitFor(got, (g) => g.length >= 3);
      expect(got.map((p) => p.amount)).toEqual(['1.0000000', '2.0000000', '3.0000000']);
    } finally {
      close();
    }
  });

  it('speaks SSE as Horizon does: retry, open/hello, id/data, heartbeat; the response stays open', async () => {
    const hb = await startLedger({ heartbeatMs: 100 });
    try {
      const a = await fundedAccount(hb);
      const ac = new AbortController();
      const res = await fetch(`${hb.url}/accounts/${a.address}/payments?cursor=`, {
        headers: { Accept: 'text/event-stream' },
        signal: ac.signal,
      });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const t0 = Date.now();
      while (!text.includes(': heartbeat') && Date.now() - t0 < 3000) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      ac.abort();
      expect(text.startsWith('retry: 1000\n\nevent: open\ndata: "hello"\n\n')).toBe(true);
      const m = /id: (\d+)\ndata: (\{.*\})\n\n/.exec(text);
      expect(m).not.toBeNull();
      expect(JSON.parse(m![2]!)).toMatchObject({ paging_token: m![1], type: 'create_account', account: a.address });
      expect(text).toContain(': heartbeat\n\n');
    } finally {
      await hb.close();
    }
  });
});
