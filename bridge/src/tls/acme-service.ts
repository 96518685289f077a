import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import acme from 'acme-client';
import { loadOrCreateAccountKey } from './account-key.js';
import { fetchRenewalWindow, pickInWindow } from './ari.js';
import { installPair } from './atomic-write.js';
import { backoffDelay, sleep } from './backoff.js';
import { inspectPair, namesCover, type CertInfo } from './cert-info.js';
import { HttpChallengeStore } from './challenge-store.js';
import { getJson } from './https-json.js';

export const LETSENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETSENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export interface AcmeServiceOptions {
  /** The name to certify: torplus.<DOMAIN>. */
  hostname: string;
  /** ACME_EMAIL: the account contact. */
  email: string;
  /** SSL_DIR: fullchain.pem and privkey.pem are written here. */
  sslDir: string;
  /** DATA_DIR: the account key lives here. */
  dataDir: string;
  /** ACME_DIRECTORY; default Let's Encrypt production (staging when `staging`). */
  directoryUrl?: string;
  staging?: boolean;
  /** PEM file with extra CAs to trust for the ACME server itself (pebble, a private CA). */
  caFile?: string;
  /** Where HTTP-01 answers go; the bridge serves them on HTTP_PORT. One is made when not given. */
  challenges?: HttpChallengeStore;
  /**
   * Skip acme-client's own pre-check of the challenge URL (system DNS + port 80) before asking the CA.
   * Default true: the CA's validation is the one that counts, and the self-check fails behind NAT
   * without hairpinning, with a non-80 HTTP_PORT behind a port forward, and for test names.
   */
  skipChallengeVerification?: boolean;
  /** Renew after this fraction of the lifetime (default 2/3), or earlier when ARI says so. */
  renewFraction?: number;
  /** How often to look again while nothing is due (default 12 h); also bounds a very long wait. */
  checkIntervalMs?: number;
  /** Backoff after a failure: base and cap (default 1 min, 6 h). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface AcmeHealth {
  ok: boolean;
  detail: string;
  names: string[];
  notAfter: string | null;
  daysLeft: number | null;
  /** When the next renewal is due (ISO), when a certificate is in place. */
  renewAt: string | null;
  /** Set while failing: when the next attempt happens. */
  retryAt: string | null;
  failures: number;
}

export interface AcmeServiceEvents {
  issued: [CertInfo];
  error: [Error];
  info: [string];
}

/** An error that names what failed and what to check. */
export class AcmeError extends Error {
  override name = 'AcmeError';
}

interface Directory {
  newOrder?: string;
  renewalInfo?: string;
}

/** Rejects as soon as `signal` aborts; acme-client takes no signal, so its call is left to finish and its result dropped. */
function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Obtains and renews the certificate for `hostname` with ACME HTTP-01 and installs it into SSL_DIR,
 * where CertStore picks it up. Failures are retried with exponential backoff and never touch the
 * installed files: the new pair is written only after it was issued and checked.
 */
export class AcmeService extends EventEmitter<AcmeServiceEvents> {
  readonly challenges: HttpChallengeStore;
  readonly directoryUrl: string;
  private readonly o: Required<Omit<AcmeServiceOptions, 'caFile' | 'challenges' | 'directoryUrl' | 'staging'>>;
  private readonly caFile: string | undefined;
  private ca: string | undefined;
  private stopper: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private state: { info: CertInfo | null; renewAt: number | null; retryAt: number | null; failures: number; lastError: Error | null } = {
    info: null,
    renewAt: null,
    retryAt: null,
    failures: 0,
    lastError: null,
  };
  /** ARI pick per certificate, so a re-check does not re-roll the random moment. */
  private ariPick: { fingerprint: string; at: number } | null = null;

  constructor(opts: AcmeServiceOptions) {
    super();
    this.challenges = opts.challenges ?? new HttpChallengeStore();
    this.directoryUrl = opts.directoryUrl ?? (opts.staging ? LETSENCRYPT_STAGING : LETSENCRYPT_PRODUCTION);
    this.caFile = opts.caFile;
    this.o = {
      hostname: opts.hostname.toLowerCase(),
      email: opts.email,
      sslDir: opts.sslDir,
      dataDir: opts.dataDir,
      skipChallengeVerification: opts.skipChallengeVerification ?? true,
      renewFraction: opts.renewFraction ?? 2 / 3,
      checkIntervalMs: opts.checkIntervalMs ?? 12 * 3_600_000,
      retryBaseMs: opts.retryBaseMs ?? 60_000,
      retryMaxMs: opts.retryMaxMs ?? 6 * 3_600_000,
      now: opts.now ?? Date.now,
    };
  }

  /** Runs the check/issue/renew loop until `stop()` or `signal` aborts. Returns at once. */
  start(signal?: AbortSignal): void {
    if (this.loop) return;
    const stopper = new AbortController();
    this.stopper = stopper;
    const sig = signal ? AbortSignal.any([signal, stopper.signal]) : stopper.signal;
    this.loop = this.run(sig);
  }

  async stop(): Promise<void> {
    this.stopper?.abort(new Error('AcmeService stopped'));
    await this.loop;
    this.loop = null;
    this.stopper = null;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let waitMs: number;
      try {
        const nextAt = await this.checkOnce(signal);
        this.state.failures = 0;
        this.state.retryAt = null;
        this.state.lastError = null;
        waitMs = Math.min(Math.max(0, nextAt - this.o.now()), this.o.checkIntervalMs);
      } catch (err) {
        if (signal.aborted) break;
        waitMs = backoffDelay(this.state.failures, this.o.retryBaseMs, this.o.retryMaxMs);
        this.state.failures++;
        this.state.lastError = err as Error;
        this.state.retryAt = this.o.now() + waitMs;
        if (this.listenerCount('error') > 0) this.emit('error', err as Error);
      }
      try {
        await sleep(Math.min(waitMs, 2 ** 31 - 1), signal);
      } catch {
        break;
      }
    }
  }

  /**
   * One pass: look at the installed certificate, ask the CA (directory, ARI), issue when due.
   * Resolves the time of the next renewal; throws an AcmeError on failure (files untouched).
   */
  async checkOnce(signal?: AbortSignal): Promise<number> {
    const current = await this.readCurrent();
    const dir = await this.fetchDirectory(signal);
    if (current) {
      const renewAt = await this.renewalTime(current.info, current.cert, dir, signal);
      this.state.info = current.info;
      this.state.renewAt = renewAt;
      if (renewAt > this.o.now()) return renewAt;
      this.emit('info', `certificate for ${this.o.hostname} is due for renewal (expires ${current.info.notAfter.toISOString()})`);
    } else {
      this.emit('info', `no valid certificate for ${this.o.hostname} in ${this.o.sslDir}; requesting one from ${this.directoryUrl}`);
    }
    const info = await this.issue(signal);
    this.state.info = info;
    this.state.renewAt = this.plainRenewAt(info);
    this.emit('issued', info);
    return this.state.renewAt;
  }

  /** The installed pair when it is valid now and covers the host name; null means "obtain one". */
  private async readCurrent(): Promise<{ info: CertInfo; cert: string } | null> {
    try {
      const [cert, key] = await Promise.all([
        readFile(join(this.o.sslDir, 'fullchain.pem'), 'utf8'),
        readFile(join(this.o.sslDir, 'privkey.pem'), 'utf8'),
      ]);
      const info = inspectPair(cert, key, this.o.now(), this.o.sslDir);
      return namesCover(info.names, this.o.hostname) ? { info, cert } : null;
    } catch {
      return null;
    }
  }

  private plainRenewAt(info: CertInfo): number {
    const nb = info.notBefore.getTime();
    return nb + this.o.renewFraction * (info.notAfter.getTime() - nb);
  }

  /** 2/3 of the lifetime, or the ARI moment when the CA offers one and it is earlier. */
  private async renewalTime(info: CertInfo, cert: string, dir: Directory, signal?: AbortSignal): Promise<number> {
    const plain = this.plainRenewAt(info);
    if (!dir.renewalInfo) return plain; // no ARI at this CA (pebble 2.4): the fixed fraction alone
    try {
      const w = await fetchRenewalWindow(dir.renewalInfo, cert, { ca: await this.loadCa(), signal });
      if (!w) return plain;
      if (this.ariPick?.fingerprint !== info.fingerprint256 || this.ariPick.at < w.start.getTime() || this.ariPick.at > w.end.getTime()) {
        this.ariPick = { fingerprint: info.fingerprint256, at: pickInWindow(w) };
      }
      return Math.min(plain, this.ariPick.at);
    } catch (err) {
      // ARI is advice; a broken endpoint must not stop the plain schedule.
      this.emit('info', `ACME renewal info unavailable (${(err as Error).message}); renewing at ${new Date(plain).toISOString()}`);
      return plain;
    }
  }

  private async loadCa(): Promise<string | undefined> {
    if (!this.caFile || this.ca !== undefined) return this.ca;
    try {
      this.ca = await readFile(this.caFile, 'utf8');
    } catch (err) {
      throw new AcmeError(`cannot read the ACME CA file ${this.caFile} (${(err as Error).message}); check ACME_CA_FILE`);
    }
    return this.ca;
  }

  private async fetchDirectory(signal?: AbortSignal): Promise<Directory> {
    const ca = await this.loadCa();
    let res;
    try {
      res = await getJson(this.directoryUrl, { ca, signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new AcmeError(`ACME directory ${this.directoryUrl} unreachable: ${(err as Error).message}; check ACME_DIRECTORY and the network`);
    }
    const dir = res.body as Directory;
    if (res.status !== 200 || typeof dir !== 'object' || dir === null || typeof dir.newOrder !== 'string') {
      throw new AcmeError(`ACME directory ${this.directoryUrl} answered HTTP ${res.status} without an ACME directory; check ACME_DIRECTORY`);
    }
    return dir;
  }

  /** Orders a new certificate and installs it; throws before touching SSL_DIR on any failure. */
  private async issue(signal?: AbortSignal): Promise<CertInfo> {
    const ca = await this.loadCa();
    // acme-client sends everything through one shared axios instance; this is the documented way to
    // trust a private CA for it without touching NODE_EXTRA_CA_CERTS (which would trust it process-wide).
    if (ca) acme.axios.defaults.httpsAgent = new https.Agent({ ca });
    const account = await loadOrCreateAccountKey(this.o.dataDir);
    const client = new acme.Client({ directoryUrl: this.directoryUrl, accountKey: account.pem });
    const certKey = await acme.crypto.createPrivateEcdsaKey();
    const [, csr] = await acme.crypto.createCsr({ commonName: this.o.hostname, altNames: [this.o.hostname] }, certKey);
    let fullchain: string;
    try {
      fullchain = await raceAbort(
        client.auto({
          csr,
          email: this.o.email,
          termsOfServiceAgreed: true,
          challengePriority: ['http-01'],
          skipChallengeVerification: this.o.skipChallengeVerification,
          challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
            if (challenge.type === 'http-01') this.challenges.set(challenge.token, keyAuthorization);
          },
          challengeRemoveFn: async (_authz, challenge) => {
            if (challenge.type === 'http-01') this.challenges.delete(challenge.token);
          },
        }),
        signal,
      );
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new AcmeError(
        `ACME order for ${this.o.hostname} at ${this.directoryUrl} failed: ${(err as Error).message}; check that http://${this.o.hostname}/.well-known/acme-challenge/ reaches this bridge's HTTP_PORT`,
      );
    }
    const key = certKey.toString();
    let info: CertInfo;
    try {
      info = inspectPair(fullchain, key, this.o.now(), 'issued');
    } catch (err) {
      throw new AcmeError(`the CA returned an unusable certificate for ${this.o.hostname}: ${(err as Error).message}`);
    }
    if (!namesCover(info.names, this.o.hostname)) {
      throw new AcmeError(`the CA returned a certificate for ${info.names.join(', ')}, not ${this.o.hostname}`);
    }
    signal?.throwIfAborted(); // stopped while ordering: leave SSL_DIR alone
    await installPair(this.o.sslDir, fullchain, key);
    return info;
  }

  health(): AcmeHealth {
    const s = this.state;
    const now = this.o.now();
    const base = {
      names: s.info?.names ?? [],
      notAfter: s.info?.notAfter.toISOString() ?? null,
      daysLeft: s.info ? Math.floor((s.info.notAfter.getTime() - now) / 86_400_000) : null,
      renewAt: s.renewAt !== null && s.info ? new Date(s.renewAt).toISOString() : null,
      retryAt: s.retryAt !== null ? new Date(s.retryAt).toISOString() : null,
      failures: s.failures,
    };
    if (s.lastError) return { ok: false, detail: `${s.lastError.message} (attempt ${s.failures}, next at ${base.retryAt})`, ...base };
    if (!s.info) return { ok: false, detail: `no certificate for ${this.o.hostname} yet`, ...base };
    return { ok: true, detail: `certificate for ${this.o.hostname} valid until ${base.notAfter}, renewal at ${base.renewAt}`, ...base };
  }
}
