import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import { Meter, type PaymentPort } from './meter.js';

function request(id: string, sessionId: string, now: number): PaymentRequest {
  return {
    id, service: 'tor', sessionId, amount: 1_000_000n, asset: 'native', destination: 'GDEST', memoHash: '00'.repeat(32),
    creditBytes: 1000, createdAt: now, expiresAt: now + 60_000, status: 'open',
  };
}

function setup(over: Partial<ConstructorParameters<typeof Meter>[0]> = {}) {
  let t = 1_000_000;
  const asked: string[] = [];
  const tokens = new Map([['tok-1', 'S1']]);
  const payments: PaymentPort = {
    requestPayment: async (key) => {
      asked.push(key);
      return { request: request(`r${asked.length}`, 'S1', t), sessionToken: 'tok-1' };
    },
    resolveSession: (tok) => tokens.get(tok),
  };
  const meter = new Meter({ freeBytes: 100, graceSeconds: 0, throttleBytesPerSec: 4096, service: 'tor', payments, now: () => t, ...over });
  return { meter, asked, advance: (ms: number) => (t += ms), now: () => t };
}

const complete = (req: PaymentRequest, visitorKey: string, creditBytes: number): PaymentComplete => ({
  request: req,
  visitorKey,
  receipt: { requestId: req.id, sessionId: req.sessionId, operationId: 'op1', transactionHash: 'h', from: 'GFROM', amount: req.amount, creditBytes, via: 'hash', createdAt: 0 },
});

const settle = () => new Promise((r) => setImmediate(r));

describe('Meter', () => {
  it('lets a visitor use the free allowance without asking for payment', () => {
    const { meter, asked } = setup();
    const a = meter.account('circuit:1');
    meter.record(a, 99);
    expect(meter.mustPay(a)).toBe(false);
    expect(asked).toEqual([]);
    expect(a.throttled).toBe(false);
  });

  it('asks for payment once past the allowance, and throttles after the grace period', async () => {
    const { meter, asked } = setup({ graceSeconds: 0 });
    const a = meter.account('circuit:1');
    meter.record(a, 150);
    meter.record(a, 10);
    await settle();
    expect(asked).toEqual(['circuit:1']);
    expect(meter.request(a)?.id).toBe('r1');
    expect(a.sessionToken).toBe('tok-1');
    expect(a.throttled).toBe(true);
    expect(a.bucket?.rate).toBe(4096);
  });

  it('waits out the grace period before throttling', async () => {
    const { meter } = setup({ graceSeconds: 1 });
    const a = meter.account('circuit:1');
    meter.record(a, 150);
    await settle();
    expect(a.throttled).toBe(false);
    await new Promise((r) => setTimeout(r, 1100));
    expect(a.throttled).toBe(true);
  });

  it('keeps one allowance per circuit', async () => {
    const { meter } = setup();
    meter.record(meter.account('circuit:1'), 150);
    const other = meter.account('circuit:2');
    meter.record(other, 50);
    expect(meter.mustPay(other)).toBe(false);
  });

  it('lifts the throttle at once on payment, credits the session, and wakes waiting streams', async () => {
    const { meter } = setup();
    const a = meter.account('circuit:1');
    meter.record(a, 150);
    await settle();
    expect(a.throttled).toBe(true);
    let woken = 0;
    meter.onRelease(a, () => woken++);
    meter.paymentComplete(complete(meter.request(a)!, 'circuit:1', 1000));
    expect(a.throttled).toBe(false);
    expect(a.bucket).toBeUndefined();
    expect(woken).toBe(1);
    // The circuit and the session token now reach the same account.
    expect(meter.account('circuit:1')).toBe(a);
    expect(meter.account('circuit:99', 'tok-1')).toBe(a);
    meter.record(a, 999);
    expect(meter.mustPay(a)).toBe(false);
    expect(a.paidBytes).toBe(999);
  });

  it('asks again when the paid credit runs out', async () => {
    const { meter, asked } = setup();
    const a = meter.account('circuit:1');
    meter.record(a, 150);
    await settle();
    meter.paymentComplete(complete(meter.request(a)!, 'circuit:1', 1000));
    meter.record(a, 1001);
    await settle();
    expect(asked).toHaveLength(2);
    expect(a.throttled).toBe(true);
  });

  it('ignores an unknown session token', () => {
    const { meter } = setup();
    expect(meter.account('circuit:5', 'forged').key).toBe('circuit:5');
  });

  it('meters nothing into payment when payments are disabled', () => {
    const meter = new Meter({ freeBytes: 10, graceSeconds: 0, throttleBytesPerSec: 4096, service: 'tor', payments: undefined });
    const a = meter.account('circuit:1');
    meter.record(a, 1e6);
    expect(meter.mustPay(a)).toBe(false);
    expect(a.throttled).toBe(false);
    meter.close();
  });

  it('throttles after grace even when the payment request cannot be created', async () => {
    const errors: Error[] = [];
    const meter = new Meter({
      freeBytes: 10, graceSeconds: 0, throttleBytesPerSec: 4096, service: 'tor',
      payments: { requestPayment: async () => Promise.reject(new Error('rate limited')), resolveSession: () => undefined },
      onError: (e) => errors.push(e),
    });
    const a = meter.account('circuit:1');
    meter.record(a, 11);
    await settle();
    expect(errors.map((e) => e.message)).toEqual(['rate limited']);
    expect(a.throttled).toBe(true);
    meter.close();
  });
});

describe('Meter totals', () => {
  it('counts bytes served free and paid since start, also for visitors it has forgotten', () => {
    const m = new Meter({ freeBytes: 100, graceSeconds: 0, throttleBytesPerSec: 1024, service: 'tor', payments: undefined, idleMs: 1 });
    m.record(m.account('circuit:1'), 60);
    m.record(m.account('circuit:2'), 150);
    expect(m.totals()).toEqual({ free: 160, paid: 0 });
    m.close();
  });
});
