import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getJson } from '../tls/https-json.js';
import { freePorts } from '../util/free-port.js';

const run = promisify(execFile);

export interface PebbleOptions {
  /** Where pebble's VA connects for HTTP-01: the test's challenge server port on 127.0.0.1. */
  httpPort: number;
  /** Where the VA connects for TLS-ALPN-01 (unused by the bridge; any port). */
  tlsPort?: number;
  /** host:port of a DNS server pebble resolves challenge names with (see startTestDns). */
  dnsServer?: string;
  /** PEBBLE_VA_ALWAYS_VALID=1: every challenge passes without a request. */
  alwaysValid?: boolean;
  /** certificateValidityPeriod in seconds (pebble's default is about 5 years). */
  certValiditySeconds?: number;
}

export interface Pebble {
  directoryUrl: string;
  /** PEM of the self-made CA behind pebble's own HTTPS listener: trust it to talk ACME to pebble. */
  caFile: string;
  /** Pebble's issuing root, fetched from the management port; pebble makes a new one on every start. */
  rootCaPem(): Promise<string>;
  stop(): Promise<void>;
}

/** Waits until `child` prints `marker` on stdout/stderr, or fails with its output. */
function waitForOutput(child: ChildProcess, marker: RegExp, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (marker.test(out)) done();
    };
    const onExit = (code: number | null): void => fail(new Error(`${what} exited (${code}) before it was ready:\n${out}`));
    const t = setTimeout(() => fail(new Error(`${what} not ready within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(t);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      // keep draining so a chatty child never blocks on a full pipe
      child.stdout?.resume();
      child.stderr?.resume();
    };
    const done = (): void => (cleanup(), resolve());
    const fail = (e: Error): void => (cleanup(), reject(e));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => (clearTimeout(t), resolve()));
    child.kill('SIGTERM');
  });
}

/**
 * A private pebble (Debian's package, which ships no test certificate) on loopback: makes a P-256 CA for
 * its HTTPS listener with openssl, writes the config, starts it in the foreground.
 */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'torplus-pebble-'));
  let child: ChildProcess | null = null;
  try {
    const caFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=torplus pebble test',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ]);
    const [listen, mgmt, spareTls] = await freePorts(3);
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: caFile,
        privateKey: keyFile,
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort ?? spareTls,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.certValiditySeconds ? { certificateValidityPeriod: opts.certValiditySeconds } : {}),
      },
    };
    const configFile = join(dir, 'pebble-config.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const args = ['-config', configFile, ...(opts.dnsServer ? ['-dnsserver', opts.dnsServer] : [])];
    child = spawn('pebble', args, {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', ...(opts.alwaysValid ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}) },
    });
    await waitForOutput(child, /Listening on: /, 'pebble');
    const ca = await readFile(caFile, 'utf8');
    const proc = child;
    return {
      directoryUrl: `https://127.0.0.1:${listen}/dir`,
      caFile,
      async rootCaPem() {
        const res = await getJson(`https://127.0.0.1:${mgmt}/roots/0`, { ca });
        if (res.status !== 200 || typeof res.body !== 'string') throw new Error(`pebble /roots/0 answered HTTP ${res.status}`);
        return res.body;
      },
      async stop() {
        await stopChild(proc);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface TestDns {
  /** host:port for pebble's -dnsserver. */
  server: string;
  stop(): Promise<void>;
}

/** A dnsmasq on loopback answering every name under `domain` with 127.0.0.1 and nothing else. */
export async function startTestDns(domain = 'example.test'): Promise<TestDns> {
  const [port] = await freePorts(1);
  const child = spawn(
    '/usr/sbin/dnsmasq',
    ['--no-daemon', '--port', String(port), '--listen-address', '127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
      `--address=/${domain}/127.0.0.1`, '--log-facility=-', '--pid-file='],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    await waitForOutput(child, /started, version/, 'dnsmasq');
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { server: `127.0.0.1:${port}`, stop: () => stopChild(child) };
}
