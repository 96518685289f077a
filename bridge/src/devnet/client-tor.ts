// A visitor's own tor: a client that joins the private network with a SOCKS port for a browser and a
// control port, so a test can do what Tor Browser's "New circuit for this site" does (SIGNAL NEWNYM).
// Private network only: the join configuration is checked like every other tor started here.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControl } from '../tor/control.js';
import { freePorts } from '../util/free-port.js';
import { assertPrivateTorConfig } from './tornet.js';

export interface ClientTor {
  socksPort: number;
  control: TorControl;
  /**
   * What Tor Browser's "New circuit for this site" does, and more: new circuits for new streams
   * (NEWNYM), and every open circuit closed, so no kept-alive connection goes on over an old one.
   * Returns the ids of the circuits closed.
   */
  newCircuits(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startClientTor(joinConfig: string, opts: { timeoutMs?: number; torBin?: string } = {}): Promise<ClientTor> {
  assertPrivateTorConfig(joinConfig);
  const dir = mkdtempSync(join(tmpdir(), 'torplus-client-tor-'));
  const [socksPort, controlPort] = (await freePorts(2)) as [number, number];
  const torrc = join(dir, 'torrc');
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(torrc, [
    `DataDirectory ${join(dir, 'data')}`,
    `__OwningControllerProcess ${process.pid}`,
    `SocksPort 127.0.0.1:${socksPort}`,
    `ControlPort 127.0.0.1:${controlPort}`,
    'CookieAuthentication 1',
    'Log notice stdout',
    joinConfig.trim(),
    '',
  ].join('\n'), { mode: 0o600 });
  const log = openSync(join(dir, 'tor.log'), 'a');
  const child: ChildProcess = spawn(opts.torBin ?? 'tor', ['--defaults-torrc', join(dir, 'empty'), '-f', torrc], { stdio: ['ignore', log, log] });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let control: TorControl | undefined;
    while (!control) {
      if (child.exitCode !== null) throw new Error(`the client tor exited with ${child.exitCode}`);
      control = await TorControl.connect({ port: controlPort, timeoutMs: 1000 }).catch(() => undefined);
      if (!control) {
        if (Date.now() > deadline) throw new Error('the client tor opened no control port');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await control.authenticate();
    for (;;) {
      const phase = (await control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '';
      if (/PROGRESS=100\b/.test(phase)) break;
      if (Date.now() > deadline) throw new Error(`the client tor did not bootstrap: ${phase}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const ctl = control;
    return {
      socksPort,
      control: ctl,
      async newCircuits() {
        await ctl.signal('NEWNYM');
        const status = (await ctl.getInfo('circuit-status'))['circuit-status'] ?? '';
        const ids = status.split('\n').map((l) => l.trim().split(' ')[0]!).filter((id) => /^\d+$/.test(id));
        for (const id of ids) await ctl.command(`CLOSECIRCUIT ${id}`).catch(() => undefined);
        return ids;
      },
      async stop() {
        await ctl.close().catch(() => undefined);
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
