// PeerMeter alone, on the gateway's real Meter with a recording PaymentPort: the request event, the
// throttle after grace, which payments lift it, and offering a declined request again.
import type { PaymentPort } from '../../gateway/meter/meter.js';
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import { PeerMeter } from './peer-meter.js';

const PEER = '12D3KooWPeer';

function port(): PaymentPort & { asked: string[] } {
  const asked: string[] = [];
  let n = 0;
  return {
    asked,
    requestPayment: async (visitorKey, service) => {
      asked.push(`${visitorKey} ${service}`);
      n++;
      const request: PaymentRequest = {
        id: `req_${n}`, service, sessionId: 'ses_1', amount: 10_000n, asset: 'native', destination: 'G', memoHash: '00',
        creditBytes: 5000, createdAt: Date.now(), expiresAt: Date.now() + 60_000, status: 'open',
      };
      return { request, sessionToken: 'token-of-ses_1-xxxxxxxx' };
    },
    resolveSession: () => undefined,
  };
}

function complete(request: PaymentRequest, over: Partial<PaymentRequest> = {}): PaymentComplete {
  const r = { ...request, ...over, status: 'paid' as const };
  return {
    request: r, visitorKey: `peer:${PEER}`,
    receipt: { requestId: r.id, sessionId: r.sessionId, operationId: 'op', transactionHash: 'ab', from: 'G', amount: r.amount, creditBytes: r.creditBytes, via: 'xdr', createdAt: Date.now() },
  };
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('PeerMeter', () => {
  const meters: PeerMeter[] = [];
  afterEach(() => meters.splice(0).forEach((m) => m.close()));
  const meter = (p: PaymentPort | undefined, reofferMs = 60_000) => {
    const m = new PeerMeter({ freeBytes: 1000, graceSeconds: 0.3, throttleBytesPerSec: 1000, payments: p, reofferMs });
    meters.push(m);
    return m;
  };

  it('asks for payment past the free allowance, throttles after grace, and a payment of the peer lifts it at once', async () => {
    const p = port();
    const m = meter(p);
    const requests: PaymentRequest[] = [];
    m.on('request', (e) => {
      expect(e.peer).toBe(PEER);
      requests.push(e.request);
    });
    m.sent(PEER, 900, '/ip4/127.0.0.1/tcp/1');
    expect(requests).toEqual([]);
    m.sent(PEER, 200);
    await until(() => requests.length === 1);
    expect(p.asked).toEqual([`peer:${PEER} ipfs`]);
    expect(m.throttled(PEER)).toBe(false); // grace
    await until(() => m.throttled(PEER));
    expect(m.reserve(PEER, 5000)).toBeGreaterThan(3000); // the bucket: 1000 bytes/s

    const woken: string[] = [];
    m.onRelease(PEER, () => woken.push('woken'));
    m.paymentComplete(complete(requests[0]!, { service: 'tor' })); // not for peers
    m.paymentComplete(complete(requests[0]!, { sessionId: 'ses_other' })); // not this peer's
    expect(m.throttled(PEER)).toBe(true);
    m.paymentComplete(complete(requests[0]!));
    expect(m.throttled(PEER)).toBe(false);
    expect(m.reserve(PEER, 5000)).toBe(0);
    expect(woken).toEqual(['woken']);
    const [acct] = m.accounting();
    expect(acct).toMatchObject({ peerId: PEER, lastAddr: '/ip4/127.0.0.1/tcp/1', bytesSent: 1100, paidStroops: 10_000n });
    expect([...acct!.requests]).toEqual([['req_1', 10_000n]]);
  });

  it('offers a declined request again after reofferMs, and a paid one never', async () => {
    const m = meter(port(), 50);
    const offered: string[] = [];
    m.on('request', (e) => offered.push(e.request.id));
    m.sent(PEER, 1500);
    await until(() => offered.length === 1);
    m.offered(PEER, 'req_1', { status: 'declined', reason: 'no seed' });
    m.sent(PEER, 10);
    expect(offered).toEqual(['req_1']); // too soon
    await new Promise((r) => setTimeout(r, 60));
    m.sent(PEER, 10);
    expect(offered).toEqual(['req_1', 'req_1']);
    m.offered(PEER, 'req_1', { status: 'paid', transactionHash: 'ab', amountStroops: 10_000n });
    await new Promise((r) => setTimeout(r, 60));
    m.sent(PEER, 10);
    expect(offered).toEqual(['req_1', 'req_1']);
  });

  it('without payments, counts both ways and never asks nor throttles', async () => {
    const m = meter(undefined);
    m.on('request', () => {
      throw new Error('no request expected');
    });
    m.sent(PEER, 50_000);
    m.received(PEER, 700, '/ip4/127.0.0.1/tcp/2');
    await new Promise((r) => setTimeout(r, 150));
    expect(m.throttled(PEER)).toBe(false);
    expect(m.receivedFrom(PEER)).toBe(700);
    expect(m.accounting()).toEqual([expect.objectContaining({ bytesSent: 50_000, bytesReceived: 700, lastAddr: '/ip4/127.0.0.1/tcp/2' })]);
  });
});
