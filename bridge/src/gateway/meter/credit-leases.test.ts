// The meter with leases of a session's credit from a payments database (a fake one here, holding each
// session's paid and used bytes like the real table): the throttle lifts when the lease arrives, the next
// lease is taken before the credit runs dry, two meters (two bridges) never spend more than was paid,
// nothing is asked for while a lease is on its way, and unused leases go back.
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import { LEASE_BYTES } from './credit-leases.js';
import { Meter, type PaymentPort } from './meter.js';

const MIB = 1024 * 1024;

/** The sessions table: credit paid and used (leased), per session. */
class FakeDb {
  readonly rows = new Map<string, { credit: number; used: number }>();
  leases = 0;
  /** Held leases (answered when released), to see what happens while one is on its way. */
  hold = false;
  private held: Array<() => void> = [];
  pay(id: string, bytes: number): void {
    const r = this.rows.get(id) ?? { credit: 0, used: 0 };
    r.credit += bytes;
    this.rows.set(id, r);
  }
  lease = async (id: string, bytes: number): Promise<number> => {
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    this.leases++;
    const r = this.rows.get(id);
    if (!r) return 0;
    const g = Math.max(0, Math.min(bytes, r.credit - r.used));
    r.used += g;
    return g;
  };
  give = (id: string, bytes: number): void => {
    const r = this.rows.get(id);
    if (r) r.used = Math.max(0, r.used - bytes);
  };
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
}

function req(id: string, now: number): PaymentRequest {
  return { id, service: 'tor', sessionId: 'S1', amount: 1n, asset: 'native', destination: 'G', memoHash: '00', creditBytes: 3 * MIB, createdAt: now, expiresAt: now + 60_000, status: 'open' };
}

function meterOn(db: FakeDb, asked: string[] = []): Meter {
  let n = 0;
  const port: PaymentPort = {
    requestPayment: async (key) => {
      asked.push(key);
      return { request: req(`r${++n}`, Date.now()), sessionToken: 'tok-S1-0123456789abcdef' };
    },
    resolveSession: (t) => (t === 'tok-S1-0123456789abcdef' ? 'S1' : undefined),
    leaseCredit: db.lease,
    returnCredit: db.give,
  };
  return new Meter({ freeBytes: 1000, graceSeconds: 0, throttleBytesPerSec: 4096, service: 'tor', payments: port });
}

const complete = (r: PaymentRequest, visitorKey: string): PaymentComplete => ({
  request: r, visitorKey,
  receipt: { requestId: r.id, sessionId: 'S1', operationId: 'op', transactionHash: 'h', from: 'G', amount: 1n, creditBytes: r.creditBytes, via: 'stream', createdAt: 0 },
});

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('credit leases', () => {
  it('lifts the throttle when the lease of a payment arrives, and leases again before the credit runs dry', async () => {
    const db = new FakeDb();
    const meter = meterOn(db);
    const a = meter.account('circuit:1');
    meter.record(a, 2000);
    await settle();
    expect(a.throttled).toBe(true);
    db.pay('S1', 3 * MIB);
    meter.paymentComplete(complete(a.request!, 'circuit:1'));
    expect(a.throttled).toBe(true); // the credit is in the database until this bridge leases it
    await settle();
    expect(a.throttled).toBe(false);
    expect(a.credit).toBe(LEASE_BYTES);
    meter.record(a, LEASE_BYTES - 100 * 1024); // below the low-water mark: the next lease is taken now
    await settle();
    expect(a.credit).toBe(LEASE_BYTES + 100 * 1024);
    expect(db.rows.get('S1')!.used).toBe(2 * LEASE_BYTES);
    meter.close();
  });

  it('never lets two bridges spend more than was paid, and asks for payment when the session is dry', async () => {
    const db = new FakeDb();
    db.pay('S1', 3 * MIB);
    const asked: string[] = [];
    const [m1, m2] = [meterOn(db, asked), meterOn(db, asked)];
    const a1 = m1.account('circuit:1', 'tok-S1-0123456789abcdef');
    const a2 = m2.account('circuit:2', 'tok-S1-0123456789abcdef');
    let served = 0;
    for (let i = 0; i < 40; i++) {
      for (const [m, a] of [[m1, a1], [m2, a2]] as const) {
        if (a.credit > 0) {
          const n = Math.min(a.credit, 200 * 1024);
          m.record(a, n);
          served += n;
        }
      }
      await settle();
    }
    expect(served).toBe(3 * MIB);
    expect(db.rows.get('S1')!.used).toBe(3 * MIB);
    m1.record(a1, 10);
    await settle();
    expect(m1.mustPay(a1)).toBe(true);
    expect(asked.length).toBeGreaterThan(0);
    m1.close();
    m2.close();
  });

  it('asks for no payment while a lease is on its way, and gives unused leases back on close', async () => {
    const db = new FakeDb();
    db.pay('S1', 3 * MIB);
    const asked: string[] = [];
    const meter = meterOn(db, asked);
    db.hold = true;
    const a = meter.account('circuit:1', 'tok-S1-0123456789abcdef'); // a session: no free allowance, a lease is asked for
    meter.record(a, 10);
    await settle();
    expect(asked).toEqual([]);
    expect(a.throttled).toBe(false);
    db.release();
    await settle();
    expect(a.credit).toBe(LEASE_BYTES - 10); // the 10 bytes served meanwhile are paid from it
    meter.close();
    expect(db.rows.get('S1')!.used).toBe(10); // the rest went back for the next bridge
  });
});
