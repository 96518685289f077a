import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import { PaymentError } from './errors.js';
import { MIB, RateLimiter, RequestBook, hashToken, requestJson, sep7PayUri } from './payment-requests.js';
import { SqlitePaymentsDatabase } from './db/sqlite-database.js';

const LOCAL = 'TorPlus Local Ledger ; 2026';
const bridge = Keypair.random().publicKey();
let dir: string;
let store: SqlitePaymentsDatabase;
let now: number;
let book: RequestBook;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'payments-req-'));
  store = SqlitePaymentsDatabase.open(dir);
  now = 1_700_000_000_000;
  book = new RequestBook({
    store, destination: bridge, pricePerMibStroops: 10_000n, paymentMib: 100, requestTtlSeconds: 900, now: () => now,
  });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('RateLimiter', () => {
  it('allows a burst, then refills continuously', async () => {
    const rl = new RateLimiter(3, 3);
    expect([rl.take('a', 0), rl.take('a', 0), rl.take('a', 0)]).toEqual([0, 0, 0]);
    expect(rl.take('a', 0)).toBe(20_000);
    expect(rl.take('b', 0)).toBe(0);
    expect(rl.take('a', 20_000)).toBe(0);
  });
});

describe('RequestBook', () => {
  it('creates a request priced pricePerMib × paymentMib in a new session, then reuses it', async () => {
    const first = (await book.request('circuit:7', 'tor'));
    expect(first.created).toBe(true);
    expect(first.sessionToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.request).toMatchObject({
      service: 'tor', amount: 1_000_000n, asset: 'native', destination: bridge, creditBytes: 100 * MIB,
      status: 'open', expiresAt: now + 900_000,
    });
    expect(first.request.memoHash).toMatch(/^[0-9a-f]{64}$/);
    const again = (await book.request('circuit:7', 'tor'));
    expect(again).toEqual({ request: first.request, created: false });
    // Another service is another request.
    expect((await book.request('circuit:7', 'ipfs')).request.id).not.toBe(first.request.id);
  });

  it('stores only the SHA-256 of the session token', async () => {
    const { sessionToken, request } = (await book.request('circuit:8', 'tor'));
    expect((await book.resolveSession(sessionToken!))!.id).toBe(request.sessionId);
    expect((await book.resolveSession('x'.repeat(43)))).toBeUndefined();
    expect((await book.resolveSession('short'))).toBeUndefined();
    await store.close();
    for (const f of ['payments.sqlite', 'payments.sqlite-wal'].filter((f) => existsSync(join(dir, f)))) {
      const bytes = readFileSync(join(dir, f));
      expect(bytes.includes(Buffer.from(sessionToken!))).toBe(false);
    }
    store = SqlitePaymentsDatabase.open(dir);
    expect((await store.sessionByTokenHash(hashToken(sessionToken!)))!.id).toBe(request.sessionId);
  });

  it('puts a new request into the session of a presented token (credit across circuits)', async () => {
    const { sessionToken, request } = (await book.request('circuit:1', 'tor'));
    const other = (await book.request('circuit:2', 'tor', sessionToken));
    expect(other.created).toBe(true);
    expect(other.sessionToken).toBeUndefined();
    expect(other.request.sessionId).toBe(request.sessionId);
    await expect(book.request('circuit:3', 'tor', 'y'.repeat(43))).rejects.toThrow(PaymentError);
  });

  it('rate-limits new requests per visitor with a clear error', async () => {
    const strict = new RequestBook({
      store, destination: bridge, pricePerMibStroops: 1n, paymentMib: 1, requestTtlSeconds: 1, now: () => now,
      perVisitor: { capacity: 2, perMinute: 1 },
    });
    (await strict.request('circuit:9', 'tor'));
    (await strict.request('circuit:9', 'ipfs'));
    now += 1000; // both expired: the next one would be new
    let err: PaymentError | undefined;
    try {
      (await strict.request('circuit:9', 'tor'));
    } catch (e) {
      err = e as PaymentError;
    }
    expect(err?.code).toBe('rate_limited');
    expect(err?.retryAfterSeconds).toBe(59);
    expect(err?.message).toMatch(/try again in 59 s/);
    // Other visitors are not affected, and the visitor may ask again once a token is back.
    expect((await strict.request('circuit:10', 'tor')).created).toBe(true);
    now += 59_000;
    expect((await strict.request('circuit:9', 'tor')).created).toBe(true);
  });

  it('caps new requests in all (circuits are free to make)', async () => {
    const small = new RequestBook({
      store, destination: bridge, pricePerMibStroops: 1n, paymentMib: 1, requestTtlSeconds: 60, now: () => now,
      global: { capacity: 2, perMinute: 1 },
    });
    (await small.request('c:1', 'tor'));
    (await small.request('c:2', 'tor'));
    await expect(small.request('c:3', 'tor')).rejects.toThrow(/too many payment requests/);
  });

  it('expires open requests', async () => {
    const { request } = (await book.request('circuit:11', 'tor'));
    now = request.expiresAt;
    expect((await book.expire())).toBe(1);
    expect((await book.get(request.id))!.status).toBe('expired');
    expect((await book.request('circuit:11', 'tor')).request.id).not.toBe(request.id);
  });
});

describe('SEP-7', () => {
  it('builds a web+stellar:pay URI with a base64 MEMO_HASH, percent-encoded', async () => {
    const { request } = (await book.request('circuit:12', 'tor'));
    const uri = sep7PayUri(request, LOCAL, 'TorPlus: 100 MiB & more');
    expect(uri.startsWith('web+stellar:pay?')).toBe(true);
    for (const pair of uri.slice('web+stellar:pay?'.length).split('&')) {
      expect(pair).toMatch(/^[a-z_]+=[A-Za-z0-9%._~-]+$/); // every value percent-encoded
    }
    const q = new URLSearchParams(uri.slice('web+stellar:pay?'.length));
    expect(q.get('destination')).toBe(bridge);
    expect(q.get('amount')).toBe('0.1');
    expect(Buffer.from(q.get('memo')!, 'base64').toString('hex')).toBe(request.memoHash);
    expect(q.get('memo_type')).toBe('MEMO_HASH');
    expect(q.get('network_passphrase')).toBe(LOCAL);
    expect(q.get('msg')).toBe('TorPlus: 100 MiB & more');
    expect(uri).toContain('network_passphrase=TorPlus%20Local%20Ledger%20%3B%202026');
  });

  it('gives the request as JSON with string amounts', async () => {
    const { request } = (await book.request('circuit:13', 'tor'));
    const j = requestJson(request, LOCAL);
    expect(j).toMatchObject({ id: request.id, amount: '0.1000000', amountStroops: '1000000', memoType: 'MEMO_HASH', memoHex: request.memoHash });
    expect(JSON.parse(JSON.stringify(j)).uri).toMatch(/^web\+stellar:pay\?/);
  });
});

describe('prices per service', () => {
  it('asks IPFS peers for PAYMENT_MIB at the IPFS price, visitors at the site price', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prices-'));
    const store = SqlitePaymentsDatabase.open(dir);
    const book = new RequestBook({ store, destination: Keypair.random().publicKey(), pricePerMibStroops: 10_000n, servicePrices: { ipfs: 2_000n }, paymentMib: 10, requestTtlSeconds: 900, now: () => 1_000 });
    expect((await book.request('peer:p1', 'ipfs')).request.amount).toBe(20_000n);
    expect((await book.request('circuit:1', 'tor')).request.amount).toBe(100_000n);
    await store.close();
  });
});
