// A minimal DNS-over-UDP TXT query (RFC 1035), because node's resolveTxt does not return the TTL.
// One question, recursion desired; answers of type TXT (any owner name, so a CNAME chain works) are returned
// with the smallest TTL. A truncated answer (TC) is asked again through node's resolver (TCP), TTL unknown (0).
// Servers are tried in order: a timeout, an unreachable server, SERVFAIL or REFUSED moves on to the next.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { promises as dnsPromises, getServers } from 'node:dns';
import { isIP } from 'node:net';

export type TxtAnswer =
  | { kind: 'records'; records: string[][]; ttl: number }
  /** NXDOMAIN: the name does not exist. */
  | { kind: 'nxdomain' }
  /** NOERROR but no TXT record (NODATA). */
  | { kind: 'nodata' };

export interface TxtQueryOptions {
  /** `host:port`, `[v6]:port` or a bare address (port 53). Default: the system's resolvers. */
  servers?: string[];
  /** Per server. Default 2000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The DNS could not answer: every server timed out, was unreachable or failed. */
export class DnsQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsQueryError';
  }
}

export interface DnsServer {
  host: string;
  port: number;
}

/** Parses `host:port`, `[v6]:port`, a bare IPv4/IPv6 address (port 53); throws a TypeError otherwise. */
export function parseDnsServer(text: string): DnsServer {
  const t = text.trim();
  const bracket = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(t);
  const plain = /^([0-9.]+|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(t);
  const m = bracket ?? plain;
  const host = m ? m[1]! : t;
  const port = m?.[2] !== undefined ? Number(m[2]) : 53;
  if (isIP(host) === 0 || !(port >= 1 && port <= 65535)) {
    throw new TypeError(`not a DNS server address: ${JSON.stringify(text)} (expected IP:PORT such as 127.0.0.1:53)`);
  }
  return { host, port };
}

/** Asks `servers` (or the system's resolvers) for the TXT records of `name`. Throws DnsQueryError. */
export async function queryTxt(name: string, opts: TxtQueryOptions = {}): Promise<TxtAnswer> {
  const list = (opts.servers && opts.servers.length > 0 ? opts.servers : getServers()).map(parseDnsServer);
  if (list.length === 0) throw new DnsQueryError('no DNS server is configured');
  const problems: string[] = [];
  for (const server of list) {
    opts.signal?.throwIfAborted();
    const where = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
    try {
      const reply = await exchange(server, encodeQuery(name), opts.timeoutMs ?? 2000, opts.signal);
      const parsed = decodeReply(reply);
      if (parsed.truncated) return await overTcp(name, where, opts.timeoutMs ?? 2000);
      if (parsed.rcode === 3) return { kind: 'nxdomain' };
      if (parsed.rcode !== 0) {
        problems.push(`${where} answered ${RCODES[parsed.rcode] ?? `rcode ${parsed.rcode}`}`);
        continue;
      }
      if (parsed.records.length === 0) return { kind: 'nodata' };
      return { kind: 'records', records: parsed.records, ttl: parsed.ttl };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  throw new DnsQueryError(`no DNS answer for ${name} TXT (${problems.join('; ')})`);
}

const RCODES: Record<number, string> = { 1: 'FORMERR', 2: 'SERVFAIL', 4: 'NOTIMP', 5: 'REFUSED' };

async function overTcp(name: string, where: string, timeoutMs: number): Promise<TxtAnswer> {
  const r = new dnsPromises.Resolver({ timeout: timeoutMs, tries: 1 });
  r.setServers([where]);
  try {
    return { kind: 'records', records: await r.resolveTxt(name), ttl: 0 };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
    if (code === 'ENODATA') return { kind: 'nodata' };
    throw err;
  }
}

function encodeQuery(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(randomInt(0, 0x10000), 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  parts.push(header);
  for (const label of labels) {
    const b = Buffer.from(label, 'ascii');
    if (b.length === 0 || b.length > 63) throw new TypeError(`not a domain name: ${JSON.stringify(name)}`);
    parts.push(Buffer.of(b.length), b);
  }
  parts.push(Buffer.of(0, 0, 16, 0, 1)); // root, QTYPE TXT, QCLASS IN
  return Buffer.concat(parts);
}

function exchange(server: DnsServer, query: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    const done = (err: Error | undefined, msg?: Buffer): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    const onAbort = (): void => done(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done(err));
    socket.on('message', (msg) => {
      // Ignore stray datagrams: only the reply to this query (same id, QR set) counts.
      if (msg.length >= 12 && msg.readUInt16BE(0) === id && (msg[2]! & 0x80) !== 0) done(undefined, msg);
    });
    socket.send(query, server.port, server.host, (err) => err && done(err));
  });
}

interface Reply {
  rcode: number;
  truncated: boolean;
  records: string[][];
  ttl: number;
}

/** Decodes a reply: the TXT answers (character-strings kept apart per record) and their smallest TTL. */
export function decodeReply(msg: Buffer): Reply {
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(msg, off) + 4;
  const records: string[][] = [];
  let ttl = Number.POSITIVE_INFINITY;
  for (let i = 0; i < an; i++) {
    off = skipName(msg, off);
    const type = msg.readUInt16BE(off);
    const cls = msg.readUInt16BE(off + 2);
    const rrTtl = msg.readUInt32BE(off + 4);
    const len = msg.readUInt16BE(off + 8);
    off += 10;
    if (off + len > msg.length) throw new Error('malformed DNS reply (record past the end)');
    if (type === 16 && cls === 1) {
      const chunks: string[] = [];
      for (let p = off; p < off + len; ) {
        const n = msg[p]!;
        chunks.push(msg.subarray(p + 1, p + 1 + n).toString('utf8'));
        p += 1 + n;
      }
      records.push(chunks);
      ttl = Math.min(ttl, rrTtl);
    }
    off += len;
  }
  return { rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, records, ttl: records.length ? ttl : 0 };
}

function skipName(msg: Buffer, off: number): number {
  for (;;) {
    if (off >= msg.length) throw new Error('malformed DNS reply (name past the end)');
    const n = msg[off]!;
    if (n === 0) return off + 1;
    if ((n & 0xc0) === 0xc0) return off + 2; // a compression pointer ends the name
    off += 1 + n;
  }
}
