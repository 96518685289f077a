// /torplus/payment/1.0.0 between two real libp2p nodes (TCP on 127.0.0.1): every way an offer ends,
// and the limits (message size, deadlines, malformed messages).
import { lpStream } from '@libp2p/utils';
import { PaymentError } from '../../payments/errors.js';
import { waitFor } from '../../payments/test-support/fixtures.js';
import { PAYMENT_PROTOCOL, paymentProtocol, type PaymentProtocol, type PaymentSettlement } from './payment-protocol.js';
import { connect, libp2pTimersDone, testNode, type TestNode } from './test-support/nodes.js';

const HASH = 'ab'.repeat(32);

describe('/torplus/payment/1.0.0', () => {
  afterAll(libp2pTimersDone);
  let a: TestNode;
  let b: TestNode;
  const stops: PaymentProtocol[] = [];
  beforeEach(async () => {
    [a, b] = [await testNode(), await testNode()];
    await connect(b, a);
  });
  afterEach(async () => {
    for (const p of stops.splice(0)) await p.stop().catch(() => {});
    await Promise.all([a.stop(), b.stop()]);
  });
  const proto = async (node: TestNode, opts: Parameters<typeof paymentProtocol>[1] = {}) => {
    const p = await paymentProtocol(node.libp2p, opts);
    stops.push(p);
    return p;
  };

  it('carries a request to the peer, its signed transaction to submit, and the receipt back', async () => {
    const settled: PaymentSettlement[] = [];
    const asked: Array<{ peer: string; request: unknown }> = [];
    await proto(b, {
      onRequest: async (peer, request) => {
        asked.push({ peer, request });
        return { xdr: 'AAAA-signed', settled: (s) => settled.push(s) };
      },
    });
    const server = await proto(a);
    const submitted: string[] = [];
    const outcome = await server.offer(b.libp2p.peerId, { id: 'req_1', amount: '0.001' }, async (xdr) => {
      submitted.push(xdr);
      return { transactionHash: HASH, amount: 10_000n, creditBytes: 1 << 20 };
    });
    expect(outcome).toEqual({ status: 'paid', transactionHash: HASH, amountStroops: 10_000n });
    expect(asked).toEqual([{ peer: a.libp2p.peerId.toString(), request: { id: 'req_1', amount: '0.001' } }]);
    expect(submitted).toEqual(['AAAA-signed']);
    await waitFor(() => settled.length > 0, 2000, 'the receipt at the paying side');
    expect(settled).toEqual([{ paid: true, transactionHash: HASH, amountStroops: 10_000n, creditBytes: 1 << 20 }]);
  });

  it('tells the peer why its payment was refused', async () => {
    const settled: PaymentSettlement[] = [];
    await proto(b, { onRequest: async () => ({ xdr: 'AAAA', settled: (s) => settled.push(s) }) });
    const server = await proto(a);
    const outcome = await server.offer(b.libp2p.peerId.toString(), { id: 'req_2' }, async () => {
      throw new PaymentError('wrong_amount', 'the payment is 1 XLM, the request asks 2 XLM');
    });
    expect(outcome).toEqual({ status: 'failed', reason: expect.stringMatching(/refused: the payment is 1 XLM/) });
    await waitFor(() => settled.length > 0, 2000, 'the refusal at the paying side');
    expect(settled).toEqual([{ paid: false, reason: 'wrong_amount: the payment is 1 XLM, the request asks 2 XLM' }]);
  });

  it('declines for a node that has no payer, and says so', async () => {
    await proto(b);
    const outcome = await (await proto(a)).offer(b.libp2p.peerId, { id: 'req_3' }, async () => {
      throw new Error('not reached');
    });
    expect(outcome).toEqual({ status: 'declined', reason: expect.stringMatching(/does not pay peers/) });
  });

  it('fails, without throwing, for a peer that does not speak the protocol', async () => {
    const outcome = await (await proto(a)).offer(b.libp2p.peerId, { id: 'req_4' }, async () => {
      throw new Error('not reached');
    });
    expect(outcome).toEqual({ status: 'failed', reason: expect.stringMatching(/could not open \/torplus\/payment\/1\.0\.0 .*stays throttled/) });
  });

  it('gives up on a peer that does not answer in time', async () => {
    await b.libp2p.handle(PAYMENT_PROTOCOL, async () => {}); // reads nothing, answers nothing
    const server = await proto(a, { answerTimeoutMs: 300, submitTimeoutMs: 300 });
    const t0 = performance.now();
    const outcome = await server.offer(b.libp2p.peerId, { id: 'req_5' }, async () => {
      throw new Error('not reached');
    });
    expect(outcome.status).toBe('failed');
    expect(performance.now() - t0).toBeGreaterThan(250);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('refuses a malformed answer', async () => {
    await b.libp2p.handle(PAYMENT_PROTOCOL, async (stream) => {
      const lp = lpStream(stream);
      await lp.read();
      await lp.write(new TextEncoder().encode(JSON.stringify({ type: 'pay', xdr: 42 })));
      await stream.close();
    });
    const outcome = await (await proto(a)).offer(b.libp2p.peerId, { id: 'req_6' }, async () => {
      throw new Error('not reached');
    });
    expect(outcome).toEqual({ status: 'failed', reason: expect.stringMatching(/the answer is malformed: xdr/) });
  });

  it('bounds the size of a message: a request over the limit never reaches the payer', async () => {
    const asked: unknown[] = [];
    const errors: string[] = [];
    await proto(b, {
      maxMessageBytes: 4096,
      onRequest: async (_peer, request) => {
        asked.push(request);
        return { decline: 'no' };
      },
      onError: (err) => errors.push(err.message),
    });
    const outcome = await (await proto(a)).offer(b.libp2p.peerId, { id: 'req_7', padding: 'x'.repeat(5000) }, async () => {
      throw new Error('not reached');
    });
    expect(outcome.status).toBe('failed');
    expect(asked).toEqual([]);
    expect(errors.join()).toMatch(/too long/i);
  });
});
