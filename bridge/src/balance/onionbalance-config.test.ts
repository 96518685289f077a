// config.yaml as onionbalance 0.2.2 reads it: checked with the YAML parser onionbalance itself uses
// (python3-yaml, a dependency of Debian's onionbalance) when it is there.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderOnionbalanceConfig, writeOnionbalanceConfig } from './onionbalance-config.js';

const a = `${'a'.repeat(56)}.onion`;
const b = 'b'.repeat(56);

/** What Python's yaml.safe_load makes of the text (as JSON), or undefined without python3-yaml. */
function pyYaml(text: string): unknown {
  const r = spawnSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: text, encoding: 'utf8' });
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
}

test('one service: the key by absolute path, each backend once, without .onion', () => {
  const text = renderOnionbalanceConfig('/srv/tor/onionbalance/master.key', [a, b]);
  expect(text).toBe(
    [
      '# Written by torplus-bridge balance whenever the live backends change; edits here are lost.',
      'services:',
      '- key: /srv/tor/onionbalance/master.key',
      '  instances:',
      `  - address: ${'a'.repeat(56)}`,
      `  - address: ${'b'.repeat(56)}`,
      '',
    ].join('\n'),
  );
  const parsed = pyYaml(text);
  if (parsed !== undefined) {
    expect(parsed).toEqual({ services: [{ key: '/srv/tor/onionbalance/master.key', instances: [{ address: 'a'.repeat(56) }, { address: 'b'.repeat(56) }] }] });
  }
});

test('a key path YAML would misread is quoted, and reads back the same', () => {
  const key = "/srv/my tor: #1/it's/hs_ed25519_secret_key";
  const text = renderOnionbalanceConfig(key, [a]);
  expect(text).toContain(`- key: ${JSON.stringify(key)}`);
  const parsed = pyYaml(text) as { services: Array<{ key: string }> } | undefined;
  if (parsed !== undefined) expect(parsed.services[0]!.key).toBe(key);
});

test('refuses what onionbalance would refuse or misread', () => {
  expect(() => renderOnionbalanceConfig('/k', [])).toThrow(/at least one backend/);
  expect(() => renderOnionbalanceConfig('master.key', [a])).toThrow(/absolute/);
  expect(() => renderOnionbalanceConfig('/k', ['example.com'])).toThrow(/not a v3 onion/);
  expect(() => renderOnionbalanceConfig('/k\nservices: []', [a])).toThrow(/control character/);
});

test('written whole and private (0600), replacing the previous file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'torplus-obconf-'));
  try {
    const file = join(dir, 'config.yaml');
    await writeOnionbalanceConfig(file, '/k', [a, b]);
    await writeOnionbalanceConfig(file, '/k', [b]);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('b'.repeat(56));
    expect(text).not.toContain('a'.repeat(56));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
