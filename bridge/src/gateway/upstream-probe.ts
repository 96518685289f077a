import { connect } from 'node:net';

/** Whether the upstream accepts TCP connections: cheap, and enough to tell "down" from "up". */
export async function probeUpstream(url: URL, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: url.hostname, port: Number(url.port || 80) });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
