import { jest } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControl, TorControlClosedError, TorControlError } from './control.js';
import type { ConfChangedEvent, SignalEvent, StatusEvent, TorEvent } from './events.js';

// ---------------------------------------------------------------------------------------------
// A scripted fake control port, for what a real offline tor cannot be made to do.

async function fakeServer(onLine: (line: string, sock: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        onLine(line, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return { server, port: addr.port };
}

describe('TorControl against a scripted server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'torctl-fake-'));
  const cookieFile = join(dir, 'cookie');
  const cookie = randomBytes(32);
  writeFileSync(cookieFile, cookie);
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('refuses a SAFECOOKIE server that does not know the cookie', async () => {
    let authenticated = false;
    const f = await fakeServer((line, sock) => {
      if (line.startsWith('PROTOCOLINFO')) {
        sock.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=SAFECOOKIE COOKIEFILE="${cookieFile}"\r\n250 OK\r\n`);
      } else if (line.startsWith('AUTHCHALLENGE')) {
        sock.write(`250 AUTHCHALLENGE SERVERHASH=${randomBytes(32).toString('hex')} SERVERNONCE=${randomBytes(32).toString('hex')}\r\n`);
      } else if (line.startsWith('AUTHENTICATE')) authenticated = true;
    });
    server = f.server;
    const c = await TorControl.connect({ port: f.port });
    await expect(c.authenticate()).rejects.toThrow(/server hash mismatch/);
    expect(authenticated).toBe(false);
    await c.close();
  });

  it('sends the right SAFECOOKIE client hash', async () => {
    const serverNonce = randomBytes(32);
    let clientNonce = Buffer.alloc(0);
    let got = '';
    const f = await fakeServer((line, sock) => {
      if (line.startsWith('PROTOCOLINFO')) {
        sock.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/nonexistent"\r\n250 OK\r\n`);
      } else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
        clientNonce = Buffer.from(line.split(' ')[2] ?? '', 'hex');
        const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
        const sh = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash').update(msg).digest('hex');
        sock.write(`250 AUTHCHALLENGE SERVERHASH=${sh} SERVERNONCE=${serverNonce.toString('hex')}\r\n`);
      } else if (line.startsWith('AUTHENTICATE ')) {
        got = line.slice('AUTHENTICATE '.length);
        sock.write('250 OK\r\n');
      }
    });
    server = f.server;
    const c = await TorControl.connect({ port: f.port });
    await c.authenticate({ cookieFile }); // overrides the bogus COOKIEFILE
    const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
    expect(got).toBe(createHmac('sha256', 'Tor safe cookie authentication controller-to-server hash').update(msg).digest('hex'));
    await c.close();
  });

  it('delivers events split across chunks and between replies', async () => {
    const f = await fakeServer((line, sock) => {
      if (line === 'GETINFO version') {
        const text =
          '250-version=0.4.9.11\r\n650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=45 TAG=requesting_descriptors ' +
          'SUMMARY="Asking for relay descriptors \\"now\\""\r\n250 OK\r\n650 HS_DESC UPLOADED ' +
          'x'.repeat(56) + ' UNKNOWN $AB~r1\r\n';
        // Dribble it out in 7-byte pieces.
        for (let i = 0; i < text.length; i += 7) sock.write(text.slice(i, i + 7));
      }
    });
    server = f.server;
    const c = await TorControl.connect({ port: f.port });
    const events: TorEvent[] = [];
    c.on('event', (e) => events.push(e));
    const hs = c.waitForEvent((e) => e.type === 'HS_DESC', { timeoutMs: 2000 });
    expect(await c.getInfo('version')).toEqual({ version: '0.4.9.11' });
    await hs;
    const st = events[0] as StatusEvent;
    expect(st.args).toMatchObject({ PROGRESS: '45', SUMMARY: 'Asking for relay descriptors "now"' });
    expect(events[1]).toMatchObject({ type: 'HS_DESC', action: 'UPLOADED', address: 'x'.repeat(56) });
    await c.close();
  });

  it('rejects pending and later calls when the connection drops, and emits close', async () => {
    const f = await fakeServer((line, sock) => {
      if (line === 'GETINFO version') setTimeout(() => sock.destroy(), 20);
    });
    server = f.server;
    const c = await TorControl.connect({ port: f.port });
    const closed = new Promise<Error | undefined>((r) => c.once('close', r));
    const a = c.getInfo('version');
    const b = c.signal('RELOAD');
    await expect(a).rejects.toBeInstanceOf(TorControlClosedError);
    await expect(b).rejects.toThrow(/closed/);
    expect(await closed).toBeInstanceOf(Error);
    await expect(c.getInfo('version')).rejects.toBeInstanceOf(TorControlClosedError);
  });

  it('rejects a connect to a closed port, and an aborted connect', async () => {
    const f = await fakeServer(() => {});
    const port = f.port;
    await new Promise((r) => f.server.close(r));
    await expect(TorControl.connect({ port })).rejects.toThrow(/cannot connect/);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(TorControl.connect({ port, signal: ac.signal })).rejects.toThrow('stop');
  });

  it('refuses line breaks in commands and values', async () => {
    const f = await fakeServer(() => {});
    server = f.server;
    const c = await TorControl.connect({ port: f.port });
    await expect(c.command('GETINFO version\r\nSIGNAL HALT')).rejects.toThrow(TypeError);
    await expect(c.setConf({ Nickname: 'a\nb' })).rejects.toThrow(TypeError);
    await expect(c.getInfo('version\nx')).rejects.toThrow(TypeError);
    await c.close();
  });
});

// ---------------------------------------------------------------------------------------------
// A real tor, offline: DisableNetwork 1 and no /etc/tor defaults.

interface TestTor {
  proc: ChildProcess;
  port: number;
  dir: string;
  exited: Promise<unknown>;
}

async function startTor(): Promise<TestTor> {
  const dir = mkdtempSync(join(tmpdir(), 'torctl-'));
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  writeFileSync(
    join(dir, 'torrc'),
    [
      `DataDirectory ${dir}/data`,
      'DisableNetwork 1',
      'SocksPort 0',
      'ControlPort 127.0.0.1:auto',
      `ControlPortWriteToFile ${dir}/port`,
      'CookieAuthentication 1',
      `__OwningControllerProcess ${process.pid}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('tor', ['-f', join(dir, 'torrc'), '--defaults-torrc', empty], { stdio: 'ignore' });
  const exited = new Promise((r) => proc.once('exit', r));
  for (let i = 0; i < 200; i++) {
    const m = /PORT=127\.0\.0\.1:(\d+)/.exec(await readFile(join(dir, 'port'), 'utf8').catch(() => ''));
    if (m) return { proc, port: Number(m[1]), dir, exited };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error('test tor did not open its control port');
}

describe('TorControl against a real tor (DisableNetwork 1)', () => {
  let tor: TestTor;
  const open: TorControl[] = [];
  const connect = async () => {
    const c = await TorControl.connect({ port: tor.port, timeoutMs: 5000 });
    open.push(c);
    await c.authenticate({ cookieFile: join(tor.dir, 'data', 'control_auth_cookie') });
    return c;
  };

  beforeAll(async () => {
    tor = await startTor();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    tor.proc.kill('SIGTERM');
    await tor.exited;
    await rm(tor.dir, { recursive: true, force: true });
  });

  it('authenticates with SAFECOOKIE (cookie file found through PROTOCOLINFO)', async () => {
    const c = await TorControl.connect({ port: tor.port });
    open.push(c);
    const spy = jest.spyOn(c, 'command');
    await c.authenticate();
    const sent = spy.mock.calls.map(([line]) => line.split(' ').slice(0, 2).join(' '));
    expect(sent).toEqual(['PROTOCOLINFO 1', 'AUTHCHALLENGE SAFECOOKIE', `AUTHENTICATE ${spy.mock.calls[2]?.[0].split(' ')[1]}`]);
    expect(await c.getInfo('version')).toEqual({ version: expect.stringMatching(/^0\.4\.\d+\.\d+/) });
  });

  it('refuses commands before authentication, with tor\'s code', async () => {
    const c = await TorControl.connect({ port: tor.port });
    open.push(c);
    const err = await c.getInfo('version').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorControlError);
    expect((err as TorControlError).code).toBe(514);
  });

  it('GETINFO: plain values, values containing "=" and quotes, and data blocks', async () => {
    const c = await connect();
    const info = await c.getInfo(['version', 'status/bootstrap-phase', 'config-text']);
    expect(info['status/bootstrap-phase']).toBe('NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"');
    expect(info['config-text']).toContain('DisableNetwork 1');
    expect(info['config-text']).not.toMatch(/\r|^\.$/m);
  });

  it('SETCONF / GETCONF / RESETCONF with CONF_CHANGED events', async () => {
    const c = await connect();
    await c.setEvents(['STATUS_CLIENT', 'CONF_CHANGED', 'SIGNAL']);
    const changed = c.waitForEvent<ConfChangedEvent>((e) => e.type === 'CONF_CHANGED', { timeoutMs: 5000 });
    await c.setConf({ Nickname: 'torplusTest', ContactInfo: 'a "quoted" value \\ x' });
    // tor lists the changes in its own (option table) order.
    expect((await changed).changes).toEqual([
      { key: 'ContactInfo', value: 'a "quoted" value \\ x' },
      { key: 'Nickname', value: 'torplusTest' },
    ]);
    expect(await c.getConf(['Nickname', 'ContactInfo'])).toEqual({
      Nickname: ['torplusTest'],
      ContactInfo: ['a "quoted" value \\ x'],
    });
    const reset = c.waitForEvent<ConfChangedEvent>((e) => e.type === 'CONF_CHANGED', { timeoutMs: 5000 });
    await c.resetConf(['ContactInfo']);
    expect((await reset).changes).toEqual([{ key: 'ContactInfo', value: null }]);
    await expect(c.setConf({ NoSuchOption: 1 })).rejects.toMatchObject({ code: 552 });
  });

  it('SIGNAL with a SIGNAL event', async () => {
    const c = await connect();
    await c.setEvents(['SIGNAL']);
    const ev = c.waitForEvent<SignalEvent>((e) => e.type === 'SIGNAL', { timeoutMs: 5000 });
    await c.signal('RELOAD');
    expect((await ev).signal).toBe('RELOAD');
    await expect(c.signal('NOT_A_SIGNAL')).rejects.toMatchObject({ code: 552 });
  });

  it('a bad command gives TorControlError 510 and the connection stays usable', async () => {
    const c = await connect();
    const err = await c.command('FOO').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorControlError);
    expect(err).toMatchObject({ code: 510, torMessage: 'Unrecognized command "FOO"' });
    await expect(c.getInfo('no-such-key')).rejects.toMatchObject({ code: 552 });
    expect((await c.getInfo('version')).version).toBeTruthy();
  });

  it('pipelines commands in FIFO order and survives an aborted call', async () => {
    const c = await connect();
    const keys = ['version', 'status/bootstrap-phase', 'net/listeners/control', 'process/pid', 'config-file'];
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => c.getInfo(keys[i % keys.length]!)));
    results.forEach((r, i) => expect(Object.keys(r)).toEqual([keys[i % keys.length]]));
    expect(results[3]).toEqual({ 'process/pid': String(tor.proc.pid) });

    // Abort a call that is already written: its reply must be dropped, not given to the next call.
    const ac = new AbortController();
    const first = c.getInfo('version');
    const aborted = c.getInfo('config-text', { signal: ac.signal });
    const third = c.getInfo('process/pid');
    ac.abort(new Error('user gave up'));
    await expect(aborted).rejects.toThrow('user gave up');
    expect(Object.keys(await first)).toEqual(['version']);
    expect(await third).toEqual({ 'process/pid': String(tor.proc.pid) });

    // An already-aborted signal: nothing is sent.
    const spy = jest.spyOn(c, 'command');
    await expect(c.getInfo('version', { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(spy).toHaveBeenCalledTimes(1); // getInfo called command, which refused to write
    expect((await c.getInfo('version')).version).toBeTruthy();
  });

  it('ADD_ONION computes an address offline; DEL_ONION removes it', async () => {
    const c = await connect();
    const { serviceId, privateKey } = await c.addOnion({ ports: [{ virtualPort: 80, target: '127.0.0.1:1' }] });
    expect(serviceId).toMatch(/^[a-z2-7]{56}$/);
    expect(privateKey).toMatch(/^ED25519-V3:[A-Za-z0-9+/]+=*$/);
    await c.delOnion(serviceId);
    // The saved key (with its '=' padding) gives the same address back.
    const again = await c.addOnion({ key: privateKey!, ports: [{ virtualPort: 80 }], flags: ['DiscardPK'] });
    expect(again).toEqual({ serviceId });
    await c.delOnion(serviceId);
  });

  it('TAKEOWNERSHIP: tor exits when the owning connection closes (runs last)', async () => {
    const c = await connect();
    await c.takeOwnership();
    await c.close();
    let timer: NodeJS.Timeout | undefined;
    const alive = new Promise((r) => (timer = setTimeout(() => r('alive'), 10_000)));
    await expect(Promise.race([tor.exited.then(() => 'exited'), alive])).resolves.toBe('exited');
    clearTimeout(timer);
  });
});
