// Peers paying for blocks, end to end with real parts: two Helia nodes over TCP on 127.0.0.1, the real
// PaymentsService on the local ledger (a Horizon-compatible server, offline), /torplus/payment/1.0.0.
// Node A serves blocks and charges; node B fetches them and pays (or cannot).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair } from '@stellar/stellar-sdk';
import { startLedger, type LedgerHandle } from '../../devnet/ledger/ledger.js';
import { HorizonClient } from '../../payments/horizon.js';
import { PaymentsService } from '../../payments/payments-service.js';
import { capturingLogger, testConfig, waitFor } from '../../payments/test-support/fixtures.js';
import { startPeerPayments, type PeerPayments, type PeerPaymentsOptions } from './index.js';
import { connect, fetchEach, keepPinging, libp2pTimersDone, putRawBlocks, testNode, type TestNode } from './test-support/nodes.js';

const KIB = 1024;
const BLOCK = 16 * KIB;
const FREE = 200_000;
const RATE = 64 * KIB;
/** PRICE_PER_MIB 0.001 XLM, PAYMENT_MIB 1: each request asks 10,000 stroops for 1 MiB of credit. */
const AMOUNT = 10_000n;

let ledger: LedgerHandle;
let horizon: HorizonClient;
let serverKey: Keypair;
let payerKey: Keypair;
const logs = capturingLogger();

beforeAll(async () => {
  ledger = await startLedger();
  horizon = new HorizonClient(ledger.url);
  serverKey = Keypair.random();
  payerKey = Keypair.random();
  await ledger.friendbot(serverKey.publicKey());
  await ledger.friendbot(payerKey.publicKey());
});
afterAll(async () => {
  await ledger.close();
  if (process.env.PAYMENTS_TEST_LOGS === '1') process.stdout.write(logs.text());
});

describe('peers paying for blocks', () => {
  afterAll(libp2pTimersDone);
  let dir: string;
  let payments: PaymentsService;
  let a: TestNode;
  let b: TestNode;
  let A: string;
  let B: string;
  let peersA: PeerPayments;
  let peersB: PeerPayments;

  /** A charges B; B pays with `payer` (undefined: B has no seed). */
  async function start(payer: PeerPaymentsOptions['payer']): Promise<void> {
    dir = mkdtempSync(join(tmpdir(), 'p2p-pay-'));
    payments = new PaymentsService({
      config: testConfig(serverKey.secret(), { horizonUrl: ledger.url, paymentMib: 1, pricePerMibStroops: 10_000n, graceSeconds: 1 }),
      dataDir: dir,
      log: logs.log,
    });
    await payments.start();
    [a, b] = [await testNode(), await testNode()];
    A = a.libp2p.peerId.toString();
    B = b.libp2p.peerId.toString();
    const common = { freeBytes: FREE, graceSeconds: 1, throttleBytesPerSec: RATE, reofferMs: 500, log: logs.log };
    peersA = await startPeerPayments({ libp2p: a.libp2p, payments, ...common });
    peersB = await startPeerPayments({ libp2p: b.libp2p, payments: undefined, ...common, ...(payer ? { payer } : {}) });
    await connect(b, a);
  }
  afterEach(async () => {
    await peersA?.stop();
    await peersB?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await payments?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const statsOf = (p: PeerPayments, peer: string) => p.stats().find((r) => r.peerId === peer);
  const throttled = () => peersA.meter.throttled(B);
  /** Fetches `n` blocks of A's and returns the seconds it took. */
  async function timed(cids: Parameters<typeof fetchEach>[1]): Promise<number> {
    const t0 = performance.now();
    expect(await fetchEach(b, cids, AbortSignal.timeout(30_000))).toBe(cids.length * BLOCK);
    return (performance.now() - t0) / 1000;
  }

  it('asks a peer without a seed to pay past the free allowance, throttles it after grace, and it stays throttled', async () => {
    await start({ keypair: undefined, ledger: horizon, maxSpendStroops: 1_000_000n });
    const cids = await putRawBlocks(a, 14 + 16, BLOCK);
    const free = await timed(cids.slice(0, 14)); // 224 KiB: past the 200 KB allowance
    expect(free).toBeLessThan(1);
    // The request went to B over /torplus/payment/1.0.0, B declined: it has no seed.
    await waitFor(() => statsOf(peersA, B)?.lastOffer?.startsWith('declined') ?? false, 5000, 'the decline');
    expect(statsOf(peersA, B)!.lastOffer).toMatch(/declined: this node has no Stellar seed configured/);
    expect(statsOf(peersA, B)!.requestedStroops).toBe(AMOUNT);
    await waitFor(throttled, 3000, 'the throttle after grace');

    const pings = keepPinging(b, a);
    const connection = a.libp2p.getConnections(b.libp2p.peerId)[0]!;
    const secs = await timed(cids.slice(14));
    const { ok, failed } = await pings.stop();
    const rate = (16 * BLOCK) / secs;
    process.stdout.write(`throttled: 256 KiB in ${secs.toFixed(2)} s = ${(rate / KIB).toFixed(1)} KiB/s (configured ${RATE / KIB})\n`);
    // The bucket's 16 KiB burst passes at once: 240 KiB at 64 KiB/s = 3.75 s.
    expect(secs).toBeGreaterThan(3.75 * 0.9);
    expect(secs).toBeLessThan(3.75 * 1.3);
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThanOrEqual(8);
    expect(connection.status).toBe('open');
    expect(throttled()).toBe(true);
    expect(statsOf(peersA, B)).toMatchObject({ throttled: true, paidStroops: 0n, connected: true });
  });

  it('is not throttled on /torplus/payment/1.0.0: an offer to a throttled peer, mid-transfer, answers at once', async () => {
    await start(undefined);
    const cids = await putRawBlocks(a, 14, BLOCK, 1);
    const big = await putRawBlocks(a, 3, 64 * KIB, 11);
    await timed(cids);
    await waitFor(throttled, 3000, 'the throttle');
    // Blocks of 64 KiB: ~1 s each at 64 KiB/s, so anything queued behind them would wait that long.
    const t1 = performance.now();
    const transfer = fetchEach(b, big, AbortSignal.timeout(30_000)).then(() => (performance.now() - t1) / 1000);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const outcome = await peersA.protocol.offer(B, { id: 'x' }, async () => {
      throw new Error('not reached');
    });
    const ms = performance.now() - t0;
    process.stdout.write(`offer round trip to a throttled peer mid-transfer: ${ms.toFixed(0)} ms\n`);
    expect(outcome).toEqual({ status: 'declined', reason: expect.stringMatching(/does not pay peers/) });
    expect(ms).toBeLessThan(250);
    expect(throttled()).toBe(true);
    expect(await transfer).toBeGreaterThan(2.5);
  });

  it('declines over budget and stays throttled, then pays within budget: unthrottled at once, the server paid', async () => {
    await start({ keypair: payerKey, ledger: horizon, maxSpendStroops: 0n });
    const before = (await horizon.account(serverKey.publicKey()))!.balance;
    const cids = await putRawBlocks(a, 14 + 8 + 32, BLOCK, 2);
    await timed(cids.slice(0, 14));
    await waitFor(() => statsOf(peersA, B)?.lastOffer?.startsWith('declined') ?? false, 5000, 'the decline');
    expect(statsOf(peersA, B)!.lastOffer).toMatch(/declined: over budget: asks 0\.001 XLM, 0 XLM of FILL_MAX_SPEND 0 XLM left/);
    await waitFor(throttled, 3000, 'the throttle');
    const slow = await timed(cids.slice(14, 22)); // 128 KiB throttled: ~1.75 s
    expect(slow).toBeGreaterThan(1.5);
    expect(throttled()).toBe(true);
    expect(peersB.payer!.spentStroops).toBe(0n);

    // A budget now: the request is offered again (reofferMs) while B still fetches, and B pays it.
    peersB.payer!.resetBudget(1_000_000n);
    const paying = timed(cids.slice(22, 30));
    await waitFor(() => !throttled(), 10_000, 'the payment to lift the throttle');
    await paying;
    const fast = await timed(cids.slice(30)); // 512 KiB on the 1 MiB credit
    process.stdout.write(`after payment: 512 KiB in ${fast.toFixed(2)} s\n`);
    expect(fast).toBeLessThan(1);

    const after = (await horizon.account(serverKey.publicKey()))!.balance;
    expect(after - before).toBe(AMOUNT);
    expect(peersB.payer!.spentStroops).toBe(AMOUNT);
    expect(peersB.payer!.paidStroops).toBe(AMOUNT);
    expect(statsOf(peersA, B)).toMatchObject({ throttled: false, paidStroops: AMOUNT, requestedStroops: AMOUNT, lastOffer: 'paid' });
  });

  it('asks again, in the same session, when the paid credit runs out, and the peer pays again', async () => {
    await start({ keypair: payerKey, ledger: horizon, maxSpendStroops: 1_000_000n });
    const before = (await horizon.account(serverKey.publicKey()))!.balance;
    const cids = await putRawBlocks(a, 14 + 70, BLOCK, 4); // 224 KiB free-ish, then 1.09 MiB: past 1 MiB of credit
    await timed(cids.slice(0, 14));
    await waitFor(() => statsOf(peersA, B)?.lastOffer === 'paid', 10_000, 'the first payment');
    await timed(cids.slice(14));
    await waitFor(() => statsOf(peersA, B)?.paidStroops === 2n * AMOUNT, 10_000, 'the second payment');

    const ids = [...peersA.meter.accounting().find((p) => p.peerId === B)!.requests.keys()];
    expect(ids).toHaveLength(2);
    const [r1, r2] = await Promise.all(ids.map((id) => payments.getRequest(id)));
    expect(r2!.sessionId).toBe(r1!.sessionId); // no new session, so no fresh free allowance
    expect(statsOf(peersA, B)).toMatchObject({ requestedStroops: 2n * AMOUNT, paidStroops: 2n * AMOUNT, freeBytesLeft: 0, throttled: false });
    expect((await horizon.account(serverKey.publicKey()))!.balance - before).toBe(2n * AMOUNT);
  });

  it('lists every peer with what was sent, received, asked and paid', async () => {
    await start({ keypair: payerKey, ledger: horizon, maxSpendStroops: 1_000_000n });
    const cids = await putRawBlocks(a, 20, BLOCK, 3);
    await timed(cids);
    await waitFor(() => statsOf(peersA, B)?.lastOffer === 'paid', 10_000, 'the payment');

    const sa = statsOf(peersA, B)!;
    const sb = statsOf(peersB, A)!;
    expect(peersA.stats().map((r) => r.peerId)).toEqual([B]);
    expect(sa).toMatchObject({
      peerId: B, connected: true, throttled: false, requestedStroops: AMOUNT, paidStroops: AMOUNT,
      peerAskedStroops: 0n, paidToPeerStroops: 0n, openRequestId: undefined,
    });
    expect(sa.remoteAddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
    expect(sa.bytesSent).toBeGreaterThanOrEqual(20 * BLOCK);
    expect(sa.bytesSent).toBeLessThan(20 * BLOCK * 1.01);
    expect(sa.bytesReceived).toBeGreaterThan(0); // B's wantlists
    expect(sa.creditBytes).toBeGreaterThan(0);
    expect(sa.freeBytesLeft).toBe(0);
    // B's side of the same peer relation.
    expect(sb).toMatchObject({ peerId: A, connected: true, bytesReceived: sa.bytesSent, bytesSent: sa.bytesReceived, peerAskedStroops: AMOUNT, paidToPeerStroops: AMOUNT });
    expect(sb.lastDecline).toBeUndefined();

    await b.libp2p.hangUp(a.libp2p.peerId);
    await waitFor(() => statsOf(peersA, B)?.connected === false, 5000, 'the disconnect');
    expect(statsOf(peersA, B)!.remoteAddr).toBe(sa.remoteAddr); // the last address seen
  });
});
