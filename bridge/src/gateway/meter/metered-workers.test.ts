// The metered proxy in two worker processes (PROXY_WORKERS=2): one allowance and one throttle per
// visitor across the workers, a payment in the primary lifting the throttle in both at once, and a
// replaced worker metering as before. The upstream names the worker that forwarded each request.
import { Agent, createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createLogger } from '../../log/logger.js';
import type { PaymentRequest } from '../../payments/types.js';
import { GatewayService } from '../gateway-service.js';
import { ownerOfLocalPort } from '../test-support/socket-owner.js';
import { Meter } from './meter.js';
import { sleep, until } from '../../../test/support/wait.js';

const MIB = 1024 * 1024;
const FREE = 3 * MIB;
const RATE = 256 * 1024;
const VISITOR = 'ip:127.0.0.1';
/** These tests poll state the primary updates every 25 ms. */
const FAST = { intervalMs: 20 };
const log = createLogger({ level: 'error' });

function paymentRequest(id: string, now: number): PaymentRequest {
  return { id, service: 'tor', sessionId: 'S1', amount: 1n, asset: 'native', destination: 'G', memoHash: '00', creditBytes: 64 * MIB, createdAt: now, expiresAt: now + 60_000, status: 'open' };
}

interface Got { status: number; headers: Record<string, string | string[] | undefined>; bytes: number; body: string; seconds: number; pid: number }
function get(port: number, path: string, agent: Agent | false, headers: Record<string, string> = {}, onFirstByte?: () => void): Promise<Got> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      let bytes = 0;
      let body = '';
      res.once('data', () => onFirstByte?.());
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (body.length < 1000) body += c.toString('latin1');
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, bytes, body, seconds: (performance.now() - started) / 1000, pid: Number(res.headers['x-served-by']) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('the metered proxy in worker processes', () => {
  let upstream: Server;
  let gw: GatewayService;
  let meter: Meter;
  let port: number;
  const agents: Agent[] = [];
  /** The visitor's bytes in the primary each time it was asked to pay. */
  const askedAt: number[] = [];

  beforeAll(async () => {
    upstream = createServer((q, s) => {
      const size = Number(new URL(q.url!, 'http://x').searchParams.get('size') ?? 1000);
      const pid = ownerOfLocalPort(q.socket.remotePort!, gw.workerPids()) ?? 0;
      s.writeHead(200, { 'content-length': String(size), 'x-served-by': String(pid) });
      s.end(Buffer.alloc(size, 1));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    let n = 0;
    const bytesAtRequest = (): number => meter.account(VISITOR).bytes;
    meter = new Meter({
      freeBytes: FREE,
      graceSeconds: 0,
      throttleBytesPerSec: RATE,
      service: 'tor',
      payments: {
        requestPayment: async () => (askedAt.push(bytesAtRequest()), { request: paymentRequest(`req${++n}`, Date.now()), sessionToken: 'tok-S1' }),
        resolveSession: (t) => (t === 'tok-S1' ? 'S1' : undefined),
      },
    });
    gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 200, workers: 2,
      // Runs in this process (the primary) for the workers; the Host header comes from them.
      meter: { meter, paymentUrl: (_v, host, id) => `http://${host}/pay/${id}`, requestJson: (r) => ({ id: r.id }) },
    });
    await gw.start();
    port = gw.httpPort();
  });
  afterAll(async () => {
    for (const a of agents) a.destroy();
    await gw.stop();
    meter.close();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  /** One keep-alive connection to each worker: [agent to pids[0], agent to pids[1]]. */
  async function connectionPerWorker(): Promise<[Agent, Agent]> {
    const pids = gw.workerPids();
    expect(pids).toHaveLength(2);
    const byPid = new Map<number, Agent>();
    for (let i = 0; i < 20 && byPid.size < 2; i++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      const r = await get(port, '/?size=1', agent);
      if (byPid.has(r.pid) || !pids.includes(r.pid)) agent.destroy();
      else byPid.set(r.pid, agent);
    }
    expect([...byPid.keys()].sort()).toEqual([...pids].sort());
    return [byPid.get(pids[0]!)!, byPid.get(pids[1]!)!];
  }

  it('keeps one free allowance per visitor across the workers, and asks to pay exactly at its end', async () => {
    const [a, b] = await connectionPerWorker();
    const first = await Promise.all([get(port, `/?size=${MIB}`, a), get(port, `/?size=${MIB}`, b)]);
    expect(new Set(first.map((r) => r.pid)).size).toBe(2);
    for (const r of first) {
      expect(r.bytes).toBe(MIB);
      expect(r.headers['torplus-payment-request']).toBeUndefined();
    }
    // Each worker's counts reach the primary within a batch interval.
    const account = meter.account(VISITOR);
    await until('the workers\' counts', () => account.bytes === 2 * MIB + 2, FAST);
    // 1 MiB more on one worker: no worker alone has served 3 MiB, both together have.
    expect(askedAt).toEqual([]);
    await get(port, `/?size=${MIB + 32 * 1024}`, a);
    await until('the payment request', () => meter.request(meter.account(VISITOR)), FAST);
    // Asked within a slice or two of the allowance, not a batch or more late.
    expect(askedAt).toHaveLength(1);
    expect(askedAt[0]).toBeGreaterThan(FREE);
    expect(askedAt[0]).toBeLessThanOrEqual(FREE + 32 * 1024);
    await sleep(50);
    for (const agent of [a, b]) {
      const past = await get(port, '/?size=10', agent);
      expect(past.headers['torplus-payment-request']).toBe(`http://127.0.0.1:${port}/pay/req1`);
      expect(past.headers['torplus-session']).toBe('tok-S1');
      expect(String(past.headers['set-cookie'])).toContain('torplus_session=tok-S1; Path=/; HttpOnly');
      const due = await get(port, '/?size=5000', agent, { 'accept-payment': 'stellar' });
      expect(due.status).toBe(402);
      expect(JSON.parse(due.body)).toEqual({ id: 'req1' });
    }
    expect(meter.account(VISITOR).throttled).toBe(true);
  });

  /** Parallel downloads, one per agent; the rate of all of them together. */
  async function parallel(agents: Agent[], size: number) {
    const started = performance.now();
    const got = await Promise.all(agents.map((agent) => get(port, `/?size=${size}`, agent)));
    const seconds = (performance.now() - started) / 1000;
    for (const r of got) expect(r.bytes).toBe(size);
    return { got, rate: (size * agents.length) / seconds, seconds };
  }

  it('throttles the visitor\'s streams on both workers together to the configured rate (±20%)', async () => {
    const [a, b] = await connectionPerWorker();
    expect(meter.account(VISITOR).throttled).toBe(true);
    const { got, rate } = await parallel([a, b], 384 * 1024);
    expect(new Set(got.map((r) => r.pid)).size).toBe(2);
    process.stdout.write(`two streams on two workers: ${(rate / 1024).toFixed(1)} KiB/s together (throttle ${RATE / 1024} KiB/s)\n`);
    expect(rate).toBeGreaterThan(RATE * 0.8);
    expect(rate).toBeLessThan(RATE * 1.2);
  });

  it('meters as before in a worker that replaced a killed one', async () => {
    const [victim, other] = gw.workerPids() as [number, number];
    const before = meter.account(VISITOR).bytes;
    process.kill(victim, 'SIGKILL');
    const pids = await until('a new worker', () => {
      const p = gw.workerPids();
      return p.length === 2 && !p.includes(victim) && p;
    }, FAST);
    expect(pids).toContain(other);
    const [a, b] = await connectionPerWorker();
    const fresh = pids[0] === other ? b : a;
    // The new worker learns the visitor's standing from the primary: payment headers, 402, throttle.
    const past = await get(port, '/?size=10', fresh);
    expect(past.pid).not.toBe(other);
    expect(past.headers['torplus-payment-request']).toBe(`http://127.0.0.1:${port}/pay/req1`);
    expect((await get(port, '/?size=10', fresh, { 'accept-payment': 'stellar' })).status).toBe(402);
    const { rate } = await parallel([a, b], 384 * 1024);
    process.stdout.write(`after a worker restart: ${(rate / 1024).toFixed(1)} KiB/s together\n`);
    expect(rate).toBeGreaterThan(RATE * 0.8);
    expect(rate).toBeLessThan(RATE * 1.2);
    await until('the counts', () => meter.account(VISITOR).bytes >= before + 768 * 1024, FAST);
  });

  it('lifts the throttle in both workers at once when the payment completes in the primary', async () => {
    const [a, b] = await connectionPerWorker();
    const size = 8 * MIB; // 64 s for both at the throttled rate
    let started = 0;
    let paidAt = 0;
    const pay = () => {
      if (++started < 2) return;
      setTimeout(() => {
        const acct = meter.account(VISITOR);
        expect(acct.throttled).toBe(true);
        const r = meter.request(acct)!;
        paidAt = performance.now();
        meter.paymentComplete({ request: r, visitorKey: VISITOR, receipt: { requestId: r.id, sessionId: 'S1', operationId: 'op', transactionHash: 'h', from: 'G', amount: 1n, creditBytes: 64 * MIB, via: 'hash', createdAt: 0 } });
      }, 300);
    };
    const got = await Promise.all([get(port, `/?size=${size}`, a, {}, pay), get(port, `/?size=${size}`, b, {}, pay)]);
    const lifted = performance.now() - paidAt;
    process.stdout.write(`both 8 MiB downloads done ${lifted.toFixed(0)} ms after the payment\n`);
    expect(new Set(got.map((r) => r.pid)).size).toBe(2);
    for (const r of got) expect(r.bytes).toBe(size);
    expect(paidAt).toBeGreaterThan(0);
    expect(lifted).toBeLessThan(3000);
    for (const agent of [a, b]) {
      const after = await get(port, '/?size=10', agent);
      expect(after.headers['torplus-payment-request']).toBeUndefined();
    }
  });

  it('meters a new circuit presenting the session token against the paid session, in any worker', async () => {
    const onionPort = Number(gw.onionTarget().split(':')[1]);
    const session = meter.account('session:S1');
    const paidBefore = session.paidBytes;
    const circuitGet = (circuit: number, size: number) =>
      new Promise<{ text: string; seconds: number; pid: number }>((resolve) => {
        const started = performance.now();
        const s = connect({ host: '127.0.0.1', port: onionPort });
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('error', () => {});
        s.on('close', () => {
          const text = Buffer.concat(chunks).toString('latin1');
          resolve({ text, seconds: (performance.now() - started) / 1000, pid: Number(/x-served-by: (\d+)/i.exec(text)?.[1]) });
        });
        s.write(`PROXY TCP6 fc00:dead:beef:4dad::0:${circuit.toString(16)} ::1 5 80\r\nGET /?size=${size} HTTP/1.1\r\nHost: o\r\nTorPlus-Session: tok-S1\r\nConnection: close\r\n\r\n`);
      });
    // New circuits, one connection each, until both workers have carried one.
    const pids = new Set<number>();
    let circuits = 0;
    for (let circuit = 0x71; pids.size < 2 && circuit < 0x79; circuit++, circuits++) {
      const r = await circuitGet(circuit, 2 * MIB);
      expect(r.text).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(r.seconds).toBeLessThan(2); // 8 s if throttled
      pids.add(r.pid);
    }
    expect([...pids].sort()).toEqual(gw.workerPids().sort());
    await until('the paid bytes', () => session.paidBytes >= paidBefore + circuits * 2 * MIB, FAST);
    // Not the circuit's own account: the session's.
    expect(meter.account('circuit:113').bytes).toBe(0);
  });
});

describe('metered proxy workers that stop', () => {
  it('send the bytes they counted since their last batch before they exit', async () => {
    const upstream = createServer((q, s) => {
      const size = Number(new URL(q.url!, 'http://x').searchParams.get('size') ?? 1000);
      s.writeHead(200, { 'content-length': String(size) });
      s.end(Buffer.alloc(size, 1));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const meter = new Meter({ freeBytes: 1e9, graceSeconds: 0, throttleBytesPerSec: RATE, service: 'tor', payments: { requestPayment: () => Promise.reject(new Error('no')), resolveSession: () => undefined } });
    const gw = new GatewayService({
      upstream: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
      wwwDir: '/x', listenHost: '127.0.0.1', httpPort: 0, onionAddress: () => undefined, log, drainMs: 200, workers: 2,
      meter: { meter, paymentUrl: () => 'x', requestJson: () => ({}) },
    });
    await gw.start();
    try {
      // Less than a batch's bytes, and stopped well within its 25 ms: only the last flush reports them.
      const got = await Promise.all([1, 2, 3].map(() => get(gw.httpPort(), '/?size=3000', false)));
      expect(got.every((r) => r.bytes === 3000)).toBe(true);
    } finally {
      await gw.stop();
      meter.close();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
    expect(meter.account(VISITOR).bytes).toBe(9000);
  });
});
