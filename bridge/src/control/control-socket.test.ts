import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgeNotRunningError, callControl, ControlServer } from './control-socket.js';

function collect() {
  const got = { out: [] as string[], err: [] as string[], events: [] as Array<Record<string, unknown>> };
  return { got, io: { out: (t: string) => got.out.push(t), err: (t: string) => got.err.push(t), event: (e: Record<string, unknown>) => got.events.push(e) } };
}

describe('control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-'));
  const path = join(dir, 'control.sock');

  it('runs a command in the server, streams its output and returns its exit code; the socket is 0600', async () => {
    // A stale socket file from a killed bridge must not stop a new one.
    writeFileSync(path, '');
    const server = new ControlServer(path, {
      echo: async (args, io) => {
        io.out(`hello ${String(args.name)}`);
        io.event({ bytes: 5 });
        io.err('a warning');
        return 3;
      },
    });
    await server.start();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const { got, io } = collect();
    expect(await callControl(path, 'echo', { name: 'peer' }, io)).toBe(3);
    expect(got).toEqual({ out: ['hello peer'], err: ['a warning'], events: [{ bytes: 5 }] });

    const unknown = collect();
    expect(await callControl(path, 'nope', {}, unknown.io)).toBe(2);
    expect(unknown.got.err[0]).toMatch(/unknown command "nope"; the bridge knows echo/);
    await server.stop();
  });

  it('aborts the command when the client goes away, and reports a handler failure as exit 1', async () => {
    let aborted: (v: string) => void;
    const sawAbort = new Promise<string>((r) => (aborted = r));
    const server = new ControlServer(path, {
      hang: (_args, io) => new Promise<number>((resolve) => io.signal.addEventListener('abort', () => (aborted(String((io.signal.reason as Error).message)), resolve(0)))),
      boom: async () => Promise.reject(new Error('disk full')),
    });
    await server.start();
    const ac = new AbortController();
    const call = callControl(path, 'hang', {}, collect().io, ac.signal);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await expect(call).rejects.toThrow(/interrupted/);
    expect(await sawAbort).toMatch(/went away/);
    const failed = collect();
    expect(await callControl(path, 'boom', {}, failed.io)).toBe(1);
    expect(failed.got.err).toEqual(['disk full']);
    // Garbage instead of a command: exit 2, no crash.
    const raw = await new Promise<string>((resolve) => {
      const s = createConnection(path, () => s.write('not json\n'));
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('close', () => resolve(text));
    });
    expect(raw).toMatch(/"exit":2/);
    await server.stop();
  });

  it('says so when no bridge is running', async () => {
    await expect(callControl(join(dir, 'none.sock'), 'fill', {}, collect().io)).rejects.toBeInstanceOf(BridgeNotRunningError);
  });
});
