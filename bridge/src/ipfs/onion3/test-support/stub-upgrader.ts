// An Upgrader that does not upgrade: it hands the raw MultiaddrConnection to the test, so the
// transport's own behaviour (SOCKS, PROXY line, bytes, close) can be checked without Noise.
import type { ComponentLogger, Connection, Logger, MultiaddrConnection, Upgrader } from '@libp2p/interface';

function silentLogger(): Logger {
  const log = (() => {}) as unknown as Logger;
  return Object.assign(log, { error: () => {}, trace: () => {}, enabled: false, newScope: () => silentLogger() });
}

const logger: ComponentLogger = { forComponent: () => silentLogger() };
export const components = { logger };

export class StubUpgrader {
  readonly inbound: MultiaddrConnection[] = [];
  readonly outbound: MultiaddrConnection[] = [];
  /** Make the next upgrades fail with this error. */
  failWith: Error | undefined;
  private waiters: Array<() => void> = [];

  asUpgrader(): Upgrader {
    return this as unknown as Upgrader;
  }

  async upgradeOutbound(maConn: MultiaddrConnection): Promise<Connection> {
    if (this.failWith != null) throw this.failWith;
    this.outbound.push(maConn);
    return maConn as unknown as Connection;
  }

  async upgradeInbound(maConn: MultiaddrConnection): Promise<void> {
    if (this.failWith != null) throw this.failWith;
    this.inbound.push(maConn);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the n-th inbound connection (0-based) once it has arrived. */
  async nthInbound(n: number, timeoutMs = 3_000): Promise<MultiaddrConnection> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbound.length <= n) {
      if (Date.now() > deadline) throw new Error(`no inbound connection #${n} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.inbound[n]!;
  }
}

/** Reads a MultiaddrConnection until `n` bytes have arrived (or it ends). */
export async function readBytes(conn: MultiaddrConnection, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of conn) {
    const b = Buffer.from(chunk.subarray());
    chunks.push(b);
    total += b.length;
    if (total >= n) break;
  }
  return Buffer.concat(chunks);
}
