import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type TorrcOptions, renderTorrc } from './torrc.js';
import { writeObConfig } from './onionbalance-instance.js';

const base: TorrcOptions = {
  dataDir: '/srv/tor/data',
  hiddenServiceDir: '/srv/tor/hidden_service',
  controlPortFile: '/srv/tor/control-port',
  ownerPid: 4242,
  ports: [
    { virtualPort: 80, target: '127.0.0.1:8080' },
    { virtualPort: 4001, target: 'unix:/srv/p2p.sock' },
  ],
  powDefense: true,
  introDosDefense: true,
};

const settings = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

describe('renderTorrc', () => {
  it('renders every line, in order, with both defences', () => {
    expect(settings(renderTorrc(base))).toEqual([
      'DataDirectory /srv/tor/data',
      'ControlPort 127.0.0.1:auto',
      'ControlPortWriteToFile /srv/tor/control-port',
      'CookieAuthentication 1',
      '__OwningControllerProcess 4242',
      'SocksPort 0',
      'RunAsDaemon 0',
      'Log notice stdout',
      'HiddenServiceDir /srv/tor/hidden_service',
      'HiddenServicePort 80 127.0.0.1:8080',
      'HiddenServicePort 4001 unix:/srv/p2p.sock',
      'HiddenServiceExportCircuitID haproxy',
      'HiddenServicePoWDefensesEnabled 1',
      'HiddenServicePoWQueueRate 250',
      'HiddenServicePoWQueueBurst 2500',
      'HiddenServiceEnableIntroDoSDefense 1',
    ]);
  });

  it('leaves the defences out when disabled and binds a SocksPort to loopback', () => {
    const t = renderTorrc({ ...base, powDefense: false, introDosDefense: false, socksPort: 9050 });
    expect(t).not.toMatch(/PoW|IntroDoS/);
    expect(t).toMatch(/^SocksPort 127\.0\.0\.1:9050$/m);
    expect(renderTorrc({ ...base, socksPort: 'auto' })).toMatch(/^SocksPort 127\.0\.0\.1:auto$/m);
    expect(renderTorrc({ ...base, socksPort: 0 })).toMatch(/^SocksPort 0$/m);
  });

  it('makes the service an Onionbalance instance of a master when asked, after its ports', () => {
    const lines = settings(renderTorrc({ ...base, onionbalanceInstance: true }));
    const at = lines.indexOf('HiddenServiceOnionbalanceInstance 1');
    expect(at).toBeGreaterThan(lines.indexOf('HiddenServicePort 4001 unix:/srv/p2p.sock'));
    expect(settings(renderTorrc(base))).not.toContain('HiddenServiceOnionbalanceInstance 1');
  });

  it('appends the extra config verbatim at the end', () => {
    const extra = 'TestingTorNetwork 1\r\nDirAuthority a1 orport=5001 no-v2 v3ident=AB 127.0.0.1:7001 CD\n';
    const t = renderTorrc({ ...base, extraConfig: extra });
    expect(t.endsWith('TestingTorNetwork 1\nDirAuthority a1 orport=5001 no-v2 v3ident=AB 127.0.0.1:7001 CD\n')).toBe(true);
    expect(t.indexOf('TestingTorNetwork')).toBeGreaterThan(t.indexOf('HiddenServiceEnableIntroDoSDefense'));
  });

  it('quotes paths that tor would otherwise cut at "#" or mangle', () => {
    const t = renderTorrc({ ...base, dataDir: '/srv/my tor #1/data', hiddenServiceDir: '/srv/a\\b"c' });
    expect(t).toMatch(/^DataDirectory "\/srv\/my tor #1\/data"$/m);
    expect(t).toMatch(/^HiddenServiceDir "\/srv\/a\\\\b\\"c"$/m);
  });

  it.each([
    ['dataDir', { dataDir: '/srv/x\nSocksPort 9050' }],
    ['hiddenServiceDir', { hiddenServiceDir: '/srv/x\rSocksPort 9050' }],
    ['controlPortFile', { controlPortFile: '/srv/x\n' }],
    ['port target', { ports: [{ virtualPort: 80, target: '127.0.0.1:80\nSocksPort 9050' }] }],
    ['port target with a space', { ports: [{ virtualPort: 80, target: '127.0.0.1:80 x' }] }],
    ['virtual port', { ports: [{ virtualPort: 70000, target: '127.0.0.1:80' }] }],
    ['no ports', { ports: [] }],
    ['ownerPid', { ownerPid: 1.5 }],
    ['socksPort', { socksPort: -1 }],
  ] as Array<[string, Partial<TorrcOptions>]>)('rejects a bad %s', (_what, patch) => {
    expect(() => renderTorrc({ ...base, ...patch })).toThrow(TypeError);
  });
});

describe('renderTorrc output accepted by tor --verify-config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'torrc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('verifies (with DisableNetwork 1, empty defaults, a path needing quotes)', async () => {
    const odd = join(dir, 'odd dir #1');
    mkdirSync(join(odd, 'hs'), { recursive: true, mode: 0o700 });
    const file = join(dir, 'torrc');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    writeFileSync(
      file,
      renderTorrc({
        ...base,
        dataDir: join(odd, 'data'),
        hiddenServiceDir: join(odd, 'hs'),
        controlPortFile: join(odd, 'port'),
        ownerPid: process.pid,
        extraConfig: 'DisableNetwork 1\n',
      }),
    );
    const { stdout } = await promisify(execFile)('tor', ['--verify-config', '-f', file, '--defaults-torrc', empty]);
    expect(stdout).toMatch(/Configuration was valid/);
  });

  it('verifies as an Onionbalance instance with its ob_config', async () => {
    const hs = join(dir, 'ob-hs');
    mkdirSync(hs, { recursive: true, mode: 0o700 });
    await writeObConfig(hs, 'b'.repeat(56));
    const file = join(dir, 'torrc-ob');
    const empty = join(dir, 'empty-ob');
    writeFileSync(empty, '');
    writeFileSync(file, renderTorrc({ ...base, dataDir: join(dir, 'ob-data'), hiddenServiceDir: hs, controlPortFile: join(dir, 'ob-port'), ownerPid: process.pid, onionbalanceInstance: true, extraConfig: 'DisableNetwork 1\n' }));
    const { stdout } = await promisify(execFile)('tor', ['--verify-config', '-f', file, '--defaults-torrc', empty]);
    expect(stdout).toMatch(/Configuration was valid/);
  });
});
