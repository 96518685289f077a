import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));

describe('loadConfig', () => {
  it('applies the documented defaults, resolved against the working directory', () => {
    const c = loadConfig({}, cwd);
    expect(c.paths).toEqual({
      www: join(cwd, 'www'),
      tor: join(cwd, 'tor'),
      data: join(cwd, 'data'),
      ssl: join(cwd, 'ssl_torplus'),
    });
    expect(c.httpPort).toBe(80);
    expect(c.apiPort).toBe(8000);
    expect(c.upstream).toBeUndefined();
    expect(c.tor.powDefense).toBe(true);
    expect(c.logLevel).toBe('info');
  });

  it('reads typed values from the environment', () => {
    const c = loadConfig({ HTTP_PORT: '8080', UPSTREAM_URL: 'http://web:8080', DOMAIN: 'Example.COM', TOR_POW_DEFENSE: '0' }, cwd);
    expect(c.httpPort).toBe(8080);
    expect(c.upstream?.host).toBe('web:8080');
    expect(c.domain).toBe('example.com');
    expect(c.tor.powDefense).toBe(false);
  });

  it('reads .env, and the environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-env-'));
    writeFileSync(join(dir, '.env'), 'HTTP_PORT=81\nAPI_PORT=9001\n# comment\n');
    const c = loadConfig({ API_PORT: '9002' }, dir);
    expect(c.httpPort).toBe(81);
    expect(c.apiPort).toBe(9002);
  });

  it.each([
    ['HTTP_PORT', 'abc', /^HTTP_PORT: expected .*port/],
    ['HTTP_PORT', '70000', /^HTTP_PORT: expected a port from 0 to 65535/],
    ['API_PORT', '1.5', /^API_PORT: expected a whole/],
    ['UPSTREAM_URL', 'web:80', /^UPSTREAM_URL: expected an http:\/\/ URL/],
    ['UPSTREAM_URL', 'https://web/path', /^UPSTREAM_URL: expected an http:\/\/ URL with host and port only/],
    ['DOMAIN', 'https://example.com/', /^DOMAIN: expected a domain name/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL: expected error, warn, info or debug/],
    ['TOR_POW_DEFENSE', 'maybe', /^TOR_POW_DEFENSE: expected true or false/],
    ['TOR_EXTRA_CONFIG', '/nonexistent/torrc', /^TOR_EXTRA_CONFIG: expected the path of a readable file/],
  ])('rejects %s=%s with one line naming the variable', (name, value, pattern) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value }, cwd);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(pattern);
    expect((caught as Error).message).not.toContain('\n');
  });
});
