import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertError, inspectPair, namesCover, type CertInfo } from './cert-info.js';
import { permissionWarnings } from './file-perms.js';

export interface CertStoreOptions {
  /** SSL_DIR: holds fullchain.pem and privkey.pem. */
  dir: string;
  /** Quiet time after the last fs event before reloading: editors and `cp` write in several steps. */
  debounceMs?: number;
  /** Re-check interval, for file systems where fs.watch misses changes (bind mounts, NFS). 0 = off. */
  recheckMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface CertStoreHealth {
  ok: boolean;
  detail: string;
  names: string[];
  notAfter: string | null;
  daysLeft: number | null;
}

export interface CertStoreEvents {
  loaded: [CertInfo];
  error: [Error];
  warning: [string];
}

/**
 * The bridge's current certificate, reloaded from SSL_DIR without a restart. A broken, mismatched or
 * expired pair is refused with an 'error' event and the last good pair stays in use, so replacing the
 * files by hand can never take HTTPS down. Servers take `secureContext()` per connection (SNICallback)
 * or are handed it through setSecureContext on 'loaded'; open connections keep the context they started with.
 */
export class CertStore extends EventEmitter<CertStoreEvents> {
  readonly certPath: string;
  readonly keyPath: string;
  private readonly debounceMs: number;
  private readonly recheckMs: number;
  private readonly now: () => number;
  private current: { info: CertInfo; cert: string; key: string; context: tls.SecureContext } | null = null;
  private lastError: Error | null = null;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private recheck: NodeJS.Timeout | null = null;
  private loading: Promise<boolean> | null = null;

  constructor(opts: CertStoreOptions) {
    super();
    this.certPath = join(opts.dir, 'fullchain.pem');
    this.keyPath = join(opts.dir, 'privkey.pem');
    this.dir = opts.dir;
    this.debounceMs = opts.debounceMs ?? 250;
    this.recheckMs = opts.recheckMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  private readonly dir: string;

  /**
   * Reads and checks the pair now. Resolves true when a new pair was taken, false when nothing changed or
   * the pair was refused (then 'error' was emitted and `lastError` is set). Never throws.
   */
  reload(): Promise<boolean> {
    // One read at a time; a change during a read is picked up by the next debounce.
    this.loading ??= this.doReload().finally(() => (this.loading = null));
    return this.loading;
  }

  private async doReload(): Promise<boolean> {
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([readFile(this.certPath, 'utf8'), readFile(this.keyPath, 'utf8')]);
    } catch (err) {
      return this.refuse(new CertError(`cannot read the certificate in ${this.dir} (${(err as Error).message}); put fullchain.pem and privkey.pem there`));
    }
    if (this.current && this.current.cert === cert && this.current.key === key) {
      // Unchanged files: only the clock moved, which can expire the pair we serve.
      this.lastError = null;
      try {
        this.current.info = inspectPair(cert, key, this.now(), this.dir);
      } catch (err) {
        return this.refuse(err as Error);
      }
      return false;
    }
    let info: CertInfo;
    let context: tls.SecureContext;
    try {
      info = inspectPair(cert, key, this.now(), this.dir);
      context = tls.createSecureContext({ cert, key });
    } catch (err) {
      return this.refuse(err instanceof CertError ? err : new CertError(`${this.dir}: ${(err as Error).message}`));
    }
    try {
      for (const w of await permissionWarnings([this.certPath, this.keyPath])) this.emit('warning', w);
    } catch {
      /* the files vanished after reading: the next change event reloads */
    }
    this.current = { info, cert, key, context };
    this.lastError = null;
    this.emit('loaded', info);
    return true;
  }

  private refuse(err: Error): false {
    this.lastError = err;
    // 'error' without a listener would throw from EventEmitter; a refused pair must never crash the bridge.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    return false;
  }

  /** First load, then watch the folder. Resolves whether a good pair is loaded. */
  async start(): Promise<boolean> {
    await this.reload();
    try {
      // The folder, not the files: tools replace files by rename, which ends a watch on the old inode.
      this.watcher = watch(this.dir, () => this.schedule());
      this.watcher.on('error', () => {
        /* folder removed: the periodic re-check keeps trying */
      });
    } catch {
      /* no folder yet: the periodic re-check picks it up once it exists */
    }
    if (this.recheckMs > 0) {
      this.recheck = setInterval(() => void this.reload(), this.recheckMs);
      this.recheck.unref();
    }
    return this.current !== null;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.reload();
    }, this.debounceMs);
    this.debounce.unref();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.recheck) clearInterval(this.recheck);
    this.debounce = this.recheck = null;
  }

  /** The context to serve, or null before the first good pair. */
  secureContext(): tls.SecureContext | null {
    return this.current?.context ?? null;
  }

  /** PEM cert and key, for `server.setSecureContext({cert, key})`. */
  pem(): { cert: string; key: string } | null {
    return this.current ? { cert: this.current.cert, key: this.current.key } : null;
  }

  info(): CertInfo | null {
    return this.current?.info ?? null;
  }

  /** The last refusal, cleared by the next good load. */
  error(): Error | null {
    return this.lastError;
  }

  /** Whether the pair in use covers `host` (wildcards included). */
  covers(host: string): boolean {
    return this.current ? namesCover(this.current.info.names, host) : false;
  }

  /** For `tls.createServer({SNICallback})`: every new connection gets the pair current at that moment. */
  readonly sniCallback = (_servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    const ctx = this.secureContext();
    if (ctx) cb(null, ctx);
    else cb(this.lastError ?? new Error(`no certificate loaded from ${this.dir}`));
  };

  health(): CertStoreHealth {
    const c = this.current;
    if (!c) return { ok: false, detail: this.lastError?.message ?? `no certificate loaded from ${this.dir}`, names: [], notAfter: null, daysLeft: null };
    const daysLeft = Math.floor((c.info.notAfter.getTime() - this.now()) / 86_400_000);
    const expired = c.info.notAfter.getTime() <= this.now();
    const detail = expired
      ? `the certificate in use expired on ${c.info.notAfter.toISOString()}`
      : this.lastError
        ? `serving the last good certificate; the files in ${this.dir} were refused: ${this.lastError.message}`
        : `serving ${c.info.names.join(', ')} until ${c.info.notAfter.toISOString()}`;
    return { ok: !expired && !this.lastError, detail, names: c.info.names, notAfter: c.info.notAfter.toISOString(), daysLeft };
  }
}
