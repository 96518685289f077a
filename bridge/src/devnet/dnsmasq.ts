// A private dnsmasq (the Debian package) serving TXT records on 127.0.0.1:<high port>, for tests and the demo.
// It never reads /etc (no config file, no resolv.conf, no hosts) and answers only for the domains of the
// names it serves (NXDOMAIN for other names there, REFUSED elsewhere: it has no upstream).
// dnsmasq does not re-read --txt-record on SIGHUP, so setRecords() restarts it on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../util/free-port.js';
import { DnsQueryError, queryTxt } from '../dns/txt-query.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

/**
 * name → its TXT records; a record is a string, or several character-strings (each at most 255 bytes).
 * An empty list: the name exists (an A record, 127.0.0.1) but has no TXT record (NODATA).
 */
export type TxtRecords = Record<string, (string | string[])[]>;

export interface DnsmasqOptions {
  records: TxtRecords;
  /** Default: a free port. */
  port?: number;
  /** Domains answered locally (NXDOMAIN for unknown names). Default: each name without its first label. */
  domains?: string[];
  /** TTL of the answers (seconds). Default 300. */
  ttl?: number;
  /** Names that resolve to 127.0.0.1 (A records), e.g. for an ACME server's HTTP-01 validation. */
  hosts?: string[];
}

export interface Dnsmasq {
  /** `127.0.0.1:PORT`, for DNS_SERVERS / --dns / Resolver.setServers. */
  server: string;
  port: number;
  /** Replaces the records (restarts dnsmasq on the same port; resolves once it answers again). */
  setRecords(records: TxtRecords): Promise<void>;
  /** TXT queries received for `name` (or for any of the served names), over all restarts. */
  queries(name?: string): number;
  stop(): Promise<void>;
}

/** Starts dnsmasq; stop() it (tests: in afterAll). The process is also killed if this process exits. */
export async function startDnsmasq(opts: DnsmasqOptions): Promise<Dnsmasq> {
  const port = opts.port ?? (await freePort());
  const counts = new Map<string, number>();
  let child: ChildProcess | undefined;
  let records = opts.records;
  const dir = mkdtempSync(join(tmpdir(), 'torplus-dnsmasq-'));
  const conf = join(dir, 'dnsmasq.conf');
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const launch = async (): Promise<void> => {
    writeFileSync(conf, dnsmasqConf(port, records, opts));
    const p = spawn(DNSMASQ, ['--no-daemon', `--conf-file=${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = p;
    let stderr = '';
    let buffered = '';
    p.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /query\[TXT\] (\S+) from/.exec(line);
        if (m) counts.set(m[1]!.toLowerCase(), (counts.get(m[1]!.toLowerCase()) ?? 0) + 1);
      }
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null || Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`dnsmasq did not start on 127.0.0.1:${port}: ${stderr.trim() || 'no output'}`);
      }
      try {
        await queryTxt('ready.dnsmasq.invalid', { servers: [`127.0.0.1:${port}`], timeoutMs: 200 });
        break;
      } catch (err) {
        // REFUSED is an answer: it is up.
        if (err instanceof DnsQueryError && /REFUSED/.test(err.message)) break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const halt = async (): Promise<void> => {
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };

  await launch();
  return {
    server: `127.0.0.1:${port}`,
    port,
    setRecords: async (next) => {
      records = next;
      await halt();
      await launch();
    },
    queries: (name) =>
      name !== undefined
        ? (counts.get(name.toLowerCase()) ?? 0)
        : Object.keys(records).reduce((n, k) => n + (counts.get(k.toLowerCase()) ?? 0), 0),
    stop: async () => {
      process.removeListener('exit', killOnExit);
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** dnsmasq's configuration file (exported for tests): quoted strings may hold commas, quotes, backslashes. */
export function dnsmasqConf(port: number, records: TxtRecords, opts: Pick<DnsmasqOptions, 'domains' | 'ttl' | 'hosts'> = {}): string {
  const domains = new Set(opts.domains ?? Object.keys(records).map((n) => n.split('.').slice(1).join('.')).filter(Boolean));
  const lines = [
    'pid-file=', `port=${port}`, 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts', 'log-queries',
    'log-facility=-', `local-ttl=${opts.ttl ?? 300}`,
  ];
  if (process.getuid?.() === 0) lines.push('user=root');
  for (const d of domains) lines.push(`local=/${d}/`);
  const hosts = new Set(opts.hosts ?? []);
  for (const name of hosts) lines.push(`host-record=${name},127.0.0.1`);
  for (const [name, list] of Object.entries(records)) {
    if (list.length === 0 && !hosts.has(name)) lines.push(`host-record=${name},127.0.0.1`);
    for (const record of list) {
      const chunks = typeof record === 'string' ? [record] : record;
      lines.push(`txt-record=${name},${chunks.map(quote).join(',')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function quote(text: string): string {
  if (/[\n\r]/.test(text)) throw new TypeError('a TXT string for dnsmasq cannot hold a line break');
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
