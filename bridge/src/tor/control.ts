// A small typed client for tor's control port (control-spec.txt). Commands are pipelined: each is
// written at once and replies are matched to calls in FIFO order, which tor guarantees.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { type TorEvent, parseEvent } from './events.js';
import { type Reply, ReplyParser, quote, replyText, splitTokens, tokenize } from './reply.js';

export type { Reply, ReplyLine } from './reply.js';

/** Tor answered a command with a non-2xx status. */
export class TorControlError extends Error {
  override name = 'TorControlError';
  constructor(
    /** Tor's status code, e.g. 510 "Unrecognized command", 552 "Unrecognized key". */
    readonly code: number,
    /** Tor's own message (all reply lines). */
    readonly torMessage: string,
    readonly command?: string,
  ) {
    super(`tor control: ${code} ${torMessage}${command ? ` (command ${command.split(' ')[0]})` : ''}`);
  }
}

/** The control connection is closed (or closed while the call was pending). */
export class TorControlClosedError extends Error {
  override name = 'TorControlClosedError';
}

export interface ConnectOptions {
  host?: string;
  port: number;
  signal?: AbortSignal;
  /** Connection timeout; default 10 s. */
  timeoutMs?: number;
}

export interface AuthOptions {
  /** Overrides the COOKIEFILE that PROTOCOLINFO reports. */
  cookieFile?: string;
  /** Used for HASHEDPASSWORD when no cookie method is usable. */
  password?: string;
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export type ConfValue = string | number | boolean;

export interface AddOnionOptions extends CallOptions {
  /** "NEW:ED25519-V3" (default) or "ED25519-V3:<base64 key>" (keep the '=' padding). */
  key?: string;
  ports: Array<{ virtualPort: number; target?: string }>;
  flags?: string[];
}

interface Pending {
  command: string;
  resolve: (r: Reply) => void;
  reject: (e: unknown) => void;
  /** Aborted calls stay in the queue so later replies still line up; their reply is dropped. */
  done: boolean;
}

interface TorControlEvents {
  event: [TorEvent];
  /** The connection closed; the error is set when it was not closed by close(). */
  close: [Error | undefined];
}

const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';

export class TorControl extends EventEmitter<TorControlEvents> {
  private readonly parser = new ReplyParser();
  private readonly queue: Pending[] = [];
  private closedError: Error | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    let failure: Error | undefined;
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => (failure ??= e));
    this.closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        const byUs = this.closedError !== undefined;
        const why = failure ? `: ${failure.message}` : '';
        this.closedError ??= new TorControlClosedError(`tor control connection closed${why}`);
        for (const p of this.queue.splice(0)) if (!p.done) p.reject(this.closedError);
        this.emit('close', byUs ? undefined : (failure ?? this.closedError));
        resolve();
      });
    });
  }

  /** Opens a TCP connection to the control port (not yet authenticated). */
  static connect(opts: ConnectOptions): Promise<TorControl> {
    const { host = '127.0.0.1', port, signal, timeoutMs = 10_000 } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const fail = (e: unknown) => {
        cleanup();
        socket.destroy();
        reject(e);
      };
      const onAbort = () => fail(signal?.reason);
      const timer = setTimeout(() => fail(new Error(`tor control: connect to ${host}:${port} timed out`)), timeoutMs);
      const onError = (e: Error) => fail(new Error(`tor control: cannot connect to ${host}:${port}: ${e.message}`));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      socket.once('connect', () => {
        cleanup();
        resolve(new TorControl(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined || this.socket.destroyed;
  }

  /**
   * Authenticates with the best method tor offers: SAFECOOKIE (which also proves the server
   * knows the cookie, so we are not talking to an impostor on that port), then COOKIE, then
   * HASHEDPASSWORD if a password was given, then NULL.
   */
  async authenticate(opts: AuthOptions = {}): Promise<void> {
    const { signal } = opts;
    const info = await this.command('PROTOCOLINFO 1', { signal });
    let methods: string[] = [];
    let cookieFile = opts.cookieFile;
    for (const l of info.lines) {
      if (!l.text.startsWith('AUTH ')) continue;
      const { kv } = splitTokens(tokenize(l.text.slice(5)));
      methods = (kv.METHODS ?? '').split(',').filter(Boolean);
      cookieFile ??= kv.COOKIEFILE;
    }
    const has = (m: string) => methods.includes(m);
    let cookie: Buffer | undefined;
    let cookieProblem = '';
    if ((has('SAFECOOKIE') || has('COOKIE')) && cookieFile) {
      try {
        cookie = await readFile(cookieFile);
        if (cookie.length !== 32) throw new Error(`expected 32 bytes, got ${cookie.length}`);
      } catch (e) {
        cookie = undefined;
        cookieProblem = ` (cookie ${cookieFile}: ${(e as Error).message})`;
      }
    }
    if (cookie && has('SAFECOOKIE')) return this.safeCookie(cookie, signal);
    if (cookie && has('COOKIE')) {
      await this.command(`AUTHENTICATE ${cookie.toString('hex')}`, { signal });
      return;
    }
    if (opts.password !== undefined && has('HASHEDPASSWORD')) {
      await this.command(`AUTHENTICATE ${quote(opts.password)}`, { signal });
      return;
    }
    if (has('NULL')) {
      await this.command('AUTHENTICATE', { signal });
      return;
    }
    throw new Error(`tor control: no usable authentication method among [${methods.join(', ')}]${cookieProblem}`);
  }

  private async safeCookie(cookie: Buffer, signal?: AbortSignal): Promise<void> {
    const clientNonce = randomBytes(32);
    const r = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`, { signal });
    const text = r.lines.find((l) => l.text.startsWith('AUTHCHALLENGE '))?.text ?? '';
    const { kv } = splitTokens(tokenize(text.slice('AUTHCHALLENGE '.length)));
    const serverHash = Buffer.from(kv.SERVERHASH ?? '', 'hex');
    const serverNonce = Buffer.from(kv.SERVERNONCE ?? '', 'hex');
    if (serverHash.length !== 32 || serverNonce.length !== 32) {
      throw new Error(`tor control: malformed AUTHCHALLENGE reply: ${text}`);
    }
    const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
    const expected = createHmac('sha256', SERVER_KEY).update(msg).digest();
    if (!timingSafeEqual(expected, serverHash)) {
      // Whoever listens on this port does not know the cookie: do not talk to it further.
      this.socket.destroy();
      throw new Error('tor control: SAFECOOKIE server hash mismatch; the control port is not our tor');
    }
    const clientHash = createHmac('sha256', CLIENT_KEY).update(msg).digest();
    await this.command(`AUTHENTICATE ${clientHash.toString('hex')}`, { signal });
  }

  /** GETINFO: `250-key=value` lines and `250+key=` data blocks, as a record. */
  async getInfo(keys: string | readonly string[], opts: CallOptions = {}): Promise<Record<string, string>> {
    const list = typeof keys === 'string' ? [keys] : keys;
    list.forEach(checkWord);
    const r = await this.command(`GETINFO ${list.join(' ')}`, opts);
    const out: Record<string, string> = {};
    for (const l of r.lines) {
      const eq = l.text.indexOf('=');
      if (eq < 0) continue; // the final "OK"
      out[l.text.slice(0, eq)] = l.data ?? l.text.slice(eq + 1);
    }
    return out;
  }

  /** GETCONF: each key's values (empty list when unset / default). */
  async getConf(keys: string | readonly string[], opts: CallOptions = {}): Promise<Record<string, string[]>> {
    const list = typeof keys === 'string' ? [keys] : keys;
    list.forEach(checkWord);
    const r = await this.command(`GETCONF ${list.join(' ')}`, opts);
    const out: Record<string, string[]> = {};
    for (const l of r.lines) {
      const eq = l.text.indexOf('=');
      const key = eq < 0 ? l.text : l.text.slice(0, eq);
      const values = (out[key] ??= []);
      if (eq >= 0) values.push(l.text.slice(eq + 1));
    }
    return out;
  }

  /** SETCONF: a value list repeats the option; `null` resets it to its default. */
  async setConf(entries: Record<string, ConfValue | readonly ConfValue[] | null>, opts: CallOptions = {}): Promise<void> {
    const parts: string[] = [];
    for (const [key, v] of Object.entries(entries)) {
      checkWord(key);
      if (v === null) parts.push(key);
      else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${key}=${quote(confString(one as ConfValue))}`);
    }
    if (parts.length === 0) return;
    await this.command(`SETCONF ${parts.join(' ')}`, opts);
  }

  async resetConf(keys: string | readonly string[], opts: CallOptions = {}): Promise<void> {
    const list = typeof keys === 'string' ? [keys] : keys;
    list.forEach(checkWord);
    await this.command(`RESETCONF ${list.join(' ')}`, opts);
  }

  /** SIGNAL, e.g. "RELOAD", "NEWNYM", "SHUTDOWN", "HALT". */
  async signal(name: string, opts: CallOptions = {}): Promise<void> {
    checkWord(name);
    await this.command(`SIGNAL ${name}`, opts);
  }

  /** SETEVENTS replaces the whole subscription list; an empty list unsubscribes. */
  async setEvents(names: readonly string[], opts: CallOptions = {}): Promise<void> {
    names.forEach(checkWord);
    await this.command(['SETEVENTS', ...names].join(' '), opts);
  }

  /** From now on tor exits when this connection closes. */
  async takeOwnership(opts: CallOptions = {}): Promise<void> {
    await this.command('TAKEOWNERSHIP', opts);
  }

  async addOnion(o: AddOnionOptions): Promise<{ serviceId: string; privateKey?: string }> {
    const key = o.key ?? 'NEW:ED25519-V3';
    if (!/^[A-Za-z0-9-]+:[A-Za-z0-9+/=-]+$/.test(key)) throw new TypeError('addOnion: malformed key');
    const parts = ['ADD_ONION', key];
    if (o.flags?.length) {
      o.flags.forEach(checkWord);
      parts.push(`Flags=${o.flags.join(',')}`);
    }
    for (const p of o.ports) {
      if (!Number.isInteger(p.virtualPort) || p.virtualPort < 1 || p.virtualPort > 65535) throw new TypeError('addOnion: bad port');
      if (p.target !== undefined && !/^[^\s,]+$/.test(p.target)) throw new TypeError('addOnion: bad target');
      parts.push(`Port=${p.virtualPort}${p.target ? ',' + p.target : ''}`);
    }
    const r = await this.command(parts.join(' '), { signal: o.signal });
    const kv: Record<string, string> = {};
    for (const l of r.lines) {
      const eq = l.text.indexOf('=');
      if (eq > 0) kv[l.text.slice(0, eq)] = l.text.slice(eq + 1);
    }
    if (!kv.ServiceID) throw new Error(`tor control: ADD_ONION reply without ServiceID: ${replyText(r)}`);
    return kv.PrivateKey ? { serviceId: kv.ServiceID, privateKey: kv.PrivateKey } : { serviceId: kv.ServiceID };
  }

  async delOnion(serviceId: string, opts: CallOptions = {}): Promise<void> {
    checkWord(serviceId.replace(/\.onion$/, ''));
    await this.command(`DEL_ONION ${serviceId.replace(/\.onion$/, '')}`, opts);
  }

  /**
   * Sends one command line (without CRLF) and returns tor's reply. Rejects with TorControlError
   * for a non-2xx status, with the signal's reason on abort, TorControlClosedError on close.
   */
  command(line: string, opts: CallOptions = {}): Promise<Reply> {
    const { signal } = opts;
    if (/[\r\n]/.test(line)) return Promise.reject(new TypeError('tor control: command contains CR or LF'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(this.closedError ?? new TorControlClosedError('tor control connection closed'));
    return new Promise<Reply>((resolve, reject) => {
      const onAbort = () => {
        entry.done = true;
        reject(signal?.reason);
      };
      const entry: Pending = {
        command: line,
        done: false,
        resolve: (r) => {
          signal?.removeEventListener('abort', onAbort);
          if (r.code >= 200 && r.code < 300) resolve(r);
          else reject(new TorControlError(r.code, replyText(r), line));
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
      this.socket.write(line + '\r\n');
    });
  }

  /** Resolves with the first event matching `match`. */
  waitForEvent<T extends TorEvent = TorEvent>(
    match: (e: TorEvent) => boolean,
    opts: CallOptions & { timeoutMs?: number } = {},
  ): Promise<T> {
    const { signal, timeoutMs } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => done(new Error(`tor control: no matching event within ${timeoutMs} ms`)), timeoutMs);
      const onEvent = (e: TorEvent) => {
        if (match(e)) done(undefined, e as T);
      };
      const onClose = () => done(this.closedError ?? new TorControlClosedError('tor control connection closed'));
      const onAbort = () => done(signal?.reason);
      const done = (err: unknown, ev?: T) => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        if (ev) resolve(ev);
        else reject(err);
      };
      this.on('event', onEvent);
      this.once('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Closes the connection; every pending call is rejected. Resolves once the socket is closed. */
  close(): Promise<void> {
    if (!this.closedError) {
      this.closedError = new TorControlClosedError('tor control connection closed by the client');
      this.socket.end();
      // tor answers our FIN promptly; do not wait forever on a peer that does not.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
    return this.closedPromise;
  }

  private onData(chunk: string): void {
    let messages: Reply[];
    try {
      messages = this.parser.push(chunk);
    } catch (e) {
      this.socket.destroy(e as Error);
      return;
    }
    for (const m of messages) {
      if (m.code === 650) {
        let ev: TorEvent;
        try {
          ev = parseEvent(m);
        } catch {
          ev = { type: 'other', keyword: m.lines[0]?.text.split(' ')[0] ?? '', raw: m.lines.map((l) => l.text) };
        }
        try {
          this.emit('event', ev);
        } catch (e) {
          // A throwing listener must not desynchronise the reply queue: rethrow it later.
          queueMicrotask(() => {
            throw e;
          });
        }
        continue;
      }
      const p = this.queue.shift();
      // A reply with nothing waiting can only be tor's farewell before it closes; ignore it.
      if (p && !p.done) {
        p.done = true;
        p.resolve(m);
      }
    }
  }
}

/** Keywords, option names and event names: no spaces, quotes or line breaks may slip through. */
function checkWord(w: string): void {
  if (!/^[A-Za-z0-9_/.:\-]+$/.test(w)) throw new TypeError(`tor control: invalid word ${JSON.stringify(w)}`);
}

function confString(v: ConfValue): string {
  return typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
}
