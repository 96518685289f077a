// MeterHost (the primary) and RemoteVisitorMeter (each worker) wired in one process, with every
// message delivered asynchronously as over IPC. metered-workers.test.ts runs them in real workers.
import type { IncomingMessage } from 'node:http';
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import type { Visitor } from '../visitor.js';
import type { MeterToWorker } from '../worker-protocol.js';
import { Meter } from './meter.js';
import { MeterHost } from './meter-host.js';
import { RemoteVisitorMeter } from './remote-visitor-meter.js';

const RATE = 64 * 1024;
const DIRECT: Visitor = { kind: 'direct' };

function paymentRequest(id: string, now: number): PaymentRequest {
  return { id, service: 'tor', sessionId: 'S1', amount: 1n, asset: 'native', destination: 'G', memoHash: '00', creditBytes: 1000, createdAt: now, expiresAt: now + 60_000, status: 'open' };
}
const complete = (r: PaymentRequest, visitorKey: string, creditBytes: number): PaymentComplete => ({
  request: r,
  visitorKey,
  receipt: { requestId: r.id, sessionId: r.sessionId, operationId: 'op', transactionHash: 'h', from: 'G', amount: r.amount, creditBytes, via: 'hash', createdAt: 0 },
});
const fakeReq = (headers: Record<string, string> = {}, remoteAddress = '127.0.0.1') =>
  ({ headers: { host: 'site.test', ...headers }, socket: { remoteAddress } }) as unknown as IncomingMessage;
const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(freeBytes = 1000) {
  let n = 0;
  const asked: string[] = [];
  // The meter's clock stands still unless a test moves it: the bucket's waits do not depend on how busy the machine is.
  const meter = new Meter({
    freeBytes, graceSeconds: 0, throttleBytesPerSec: RATE, service: 'tor', now: () => 1_000_000,
    payments: {
      requestPayment: async (key) => (asked.push(key), { request: paymentRequest(`r${++n}`, Date.now()), sessionToken: 'tok-S1' }),
      resolveSession: (t) => (t === 'tok-S1' ? 'S1' : undefined),
    },
  });
  const host = new MeterHost({ meter, paymentUrl: (v, h, id) => `http://${h ?? '-'}/${v.kind}/${id}`, requestJson: (r) => ({ id: r.id }) });
  const sent: { from: number; t: string }[] = [];
  const worker = (id: number) => {
    const remote: RemoteVisitorMeter = new RemoteVisitorMeter({
      send: (m, done) => (sent.push({ from: id, t: m.t }), setImmediate(() => (host.receive(id, m), done?.()))),
      flushMs: 10,
    });
    host.attach(id, (m: MeterToWorker) => setImmediate(() => remote.receive(m)));
    return remote;
  };
  const w1 = worker(1);
  const w2 = worker(2);
  return { meter, host, w1, w2, asked, sent, close: () => (w1.close(), w2.close(), host.close(), meter.close()) };
}

/** Until the visitor is throttled in the primary, and the workers were told. */
async function throttled(meter: Meter): Promise<void> {
  for (let i = 0; i < 100 && !meter.account('ip:127.0.0.1').throttled; i++) await sleep(5);
  expect(meter.account('ip:127.0.0.1').throttled).toBe(true);
  await sleep(5);
}

/** A request's meter once its subject's state is known. */
async function open(w: RemoteVisitorMeter, req = fakeReq(), visitor = DIRECT) {
  const m = w.meter(req, visitor);
  let ready = false;
  if (m.pending?.(() => (ready = true))) {
    for (let i = 0; i < 50 && !ready; i++) await tick();
    expect(ready).toBe(true);
  }
  return m;
}

describe('metering across workers (MeterHost and RemoteVisitorMeter)', () => {
  it('answers a new subject once, then counts in batches into one allowance', async () => {
    const t = setup(1000);
    try {
      const a = await open(t.w1);
      const b = await open(t.w2);
      expect(t.sent.filter((s) => s.t === 'meter-open')).toHaveLength(2);
      expect((await open(t.w1)).pending?.(() => {})).toBe(false); // known now: no round trip
      for (let i = 0; i < 10; i++) a.count(40);
      b.count(400);
      await sleep(30);
      const acct = t.meter.account('ip:127.0.0.1');
      expect(acct.bytes).toBe(800);
      // One message per batch, not per chunk.
      expect(t.sent.filter((s) => s.t === 'meter-count')).toHaveLength(2);
      expect(a.headers()).toBeUndefined();
      // Neither worker alone reaches 1000 bytes; together they do.
      a.count(150);
      b.count(150);
      await sleep(30);
      expect(t.asked).toEqual(['ip:127.0.0.1']);
      for (const m of [a, b]) {
        expect(m.throttled()).toBe(true);
        expect(m.headers()).toEqual([
          'TorPlus-Payment-Request', 'http://site.test/direct/r1', 'Link', '<http://site.test/direct/r1>; rel="payment"',
          'TorPlus-Session', 'tok-S1', 'Set-Cookie', 'torplus_session=tok-S1; Path=/; HttpOnly; SameSite=Lax',
        ]);
      }
      const due = (await open(t.w2, fakeReq({ 'accept-payment': 'stellar' }))).paymentRequired();
      expect(due?.body).toBe('{"id":"r1"}');
      expect(due?.headers['TorPlus-Session']).toBe('tok-S1');
    } finally {
      t.close();
    }
  });

  it('reserves throttled slices from the one bucket in the primary', async () => {
    const t = setup(0);
    try {
      const a = await open(t.w1);
      const b = await open(t.w2);
      a.count(1);
      await throttled(t.meter);
      expect(a.throttled()).toBe(true);
      expect(b.throttled()).toBe(true);
      // The bucket starts with RATE/4 = 16 KiB: the first slice passes, then each one is 250 ms more
      // of debt, whichever worker asks.
      const waits = [await a.reserve(16384), await b.reserve(16384), await a.reserve(16384), await b.reserve(16384)];
      expect(waits[0]).toBe(0);
      waits.slice(1).forEach((w, i) => expect(w).toBe(250 * (i + 1)));
      expect(t.meter.account('ip:127.0.0.1').bytes).toBe(1 + 4 * 16384);
    } finally {
      t.close();
    }
  });

  it('has the workers reserve every slice near the end of the allowance, so the limit is exact', async () => {
    const MIB = 1024 * 1024;
    const t = setup(2 * MIB); // near: under 512 KiB per worker (2) left, so under 1 MiB
    try {
      const a = await open(t.w1);
      const b = await open(t.w2);
      expect(a.throttled()).toBe(false);
      a.count(MIB - 100);
      await sleep(30);
      expect(a.throttled()).toBe(false);
      b.count(200);
      await sleep(30);
      // Not throttled by the account, but every slice now goes through the primary, at once.
      expect(t.meter.account('ip:127.0.0.1').throttled).toBe(false);
      expect(a.throttled()).toBe(true);
      expect(b.throttled()).toBe(true);
      let sent = MIB + 100;
      while (sent + 16384 <= 2 * MIB) {
        expect(await (sent % 2 ? a : b).reserve(16384)).toBe(0);
        sent += 16384;
      }
      expect(t.asked).toEqual([]);
      // The slice that crosses the allowance asks for payment; with no grace the next one waits.
      expect(await a.reserve(16384)).toBe(0);
      await tick();
      expect(t.asked).toEqual(['ip:127.0.0.1']);
      expect(t.meter.account('ip:127.0.0.1').throttled).toBe(true);
      await a.reserve(16384);
      expect(await b.reserve(16384)).toBeGreaterThan(200);
      expect(t.meter.account('ip:127.0.0.1').bytes).toBe(sent + 3 * 16384);
    } finally {
      t.close();
    }
  });

  it('lifts the throttle in every worker when the payment completes, waking held streams', async () => {
    const t = setup(0);
    try {
      const a = await open(t.w1);
      const b = await open(t.w2, fakeReq({}, '127.0.0.1'), DIRECT);
      a.count(1);
      await throttled(t.meter);
      let woken = 0;
      a.onRelease(() => woken++);
      b.onRelease(() => woken++);
      const acct = t.meter.account('ip:127.0.0.1');
      t.meter.paymentComplete(complete(t.meter.request(acct)!, 'ip:127.0.0.1', 8 << 20)); // credit far from running out: not near
      await tick();
      await tick();
      expect(woken).toBe(2);
      expect(a.throttled()).toBe(false);
      expect(b.throttled()).toBe(false);
      expect(a.headers()).toBeUndefined();
    } finally {
      t.close();
    }
  });

  it('resolves a session token in the primary: a new circuit with the token shares the paid account', async () => {
    const t = setup(100);
    try {
      const first = await open(t.w1, fakeReq(), { kind: 'circuit', circuitId: 7 });
      first.count(200);
      await sleep(30);
      const acct = t.meter.account('circuit:7');
      expect(acct.key).toBe('session:S1');
      t.meter.paymentComplete(complete(t.meter.request(acct)!, 'circuit:7', 8 << 20));
      const other = await open(t.w2, fakeReq({ cookie: 'x=1; torplus_session=tok-S1' }), { kind: 'circuit', circuitId: 8 });
      expect(other.throttled()).toBe(false);
      other.count(500);
      await sleep(30);
      expect(acct.paidBytes).toBe(500);
      // An unknown token is just the circuit's own account.
      const forged = await open(t.w2, fakeReq({ 'torplus-session': 'forged' }), { kind: 'circuit', circuitId: 9 });
      forged.count(50);
      await sleep(30);
      expect(t.meter.account('circuit:9').bytes).toBe(50);
    } finally {
      t.close();
    }
  });

  it('forgets a worker\'s subjects when it exits, and flushes what a closing worker counted', async () => {
    const t = setup(1e9);
    try {
      const a = await open(t.w1);
      await open(t.w2, fakeReq({}, '10.0.0.2'));
      expect(t.host.size()).toBe(2);
      a.count(123);
      await new Promise<void>((r) => t.w1.close(r));
      await tick();
      expect(t.meter.account('ip:127.0.0.1').bytes).toBe(123);
      t.host.detach(1);
      expect(t.host.size()).toBe(1);
      t.host.detach(2);
      expect(t.host.size()).toBe(0);
    } finally {
      t.close();
    }
  });
});
