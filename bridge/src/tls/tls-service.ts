import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import type { TlsSource } from '../gateway/tls-source.js';
import { AcmeService } from './acme-service.js';
import { CertStore } from './cert-store.js';
import { HttpChallengeStore } from './challenge-store.js';
import { certStoreSource } from './cert-source.js';

export interface TlsServiceOptions {
  sslDir: string;
  dataDir: string;
  /** torplus.<DOMAIN>: the name the certificate must cover. */
  hostname: string | undefined;
  acme: { email: string; directory: string; caFile: string | undefined } | undefined;
  log: Logger;
}

/** Whether the bridge serves HTTPS at all: a certificate in SSL_DIR, or ACME to get one. */
export function tlsWanted(o: Pick<TlsServiceOptions, 'sslDir' | 'acme'>): boolean {
  return o.acme !== undefined || (existsSync(join(o.sslDir, 'fullchain.pem')) && existsSync(join(o.sslDir, 'privkey.pem')));
}

/**
 * HTTPS certificates: SSL_DIR watched and reloaded (CertStore), and with ACME_EMAIL the certificate
 * obtained and renewed (AcmeService), its HTTP-01 answers served on a loopback port that the gateway
 * routes /.well-known/acme-challenge/ to on HTTP_PORT. ACME starts only with startAcme(), once the
 * gateway listens: the CA checks the challenge on the plain port.
 */
export class TlsService implements Service {
  readonly name = 'tls';
  readonly store: CertStore;
  private acme: AcmeService | undefined;
  private readonly challenges = new HttpChallengeStore();
  private server: Server | undefined;
  private port = 0;

  constructor(private readonly o: TlsServiceOptions) {
    this.store = new CertStore({ dir: o.sslDir });
    this.store.on('loaded', (info) => o.log.info(`certificate for ${info.names.join(', ')} loaded; ${info.daysLeft} days left`, { service: this.name }));
    this.store.on('error', (err) => {
      // Before ACME's first certificate an empty SSL_DIR is expected, not an error.
      if (o.acme && !this.store.pem()) o.log.info(`no certificate in ${o.sslDir} yet; ACME will obtain one`, { service: this.name });
      else o.log.error(`${err.message}; the last good certificate stays in use`, { service: this.name });
    });
    this.store.on('warning', (m) => o.log.warn(m, { service: this.name }));
  }

  async start(): Promise<void> {
    await this.store.start();
    if (!this.o.acme) return;
    if (!this.o.hostname) throw new Error('ACME_EMAIL is set but DOMAIN is not: set DOMAIN, the certificate is for torplus.<DOMAIN>');
    this.server = createServer((req, res) => {
      if (!this.challenges.handler(req, res)) res.writeHead(404).end('not an ACME challenge\n');
    });
    this.port = await new Promise<number>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve((this.server!.address() as { port: number }).port));
    });
  }

  /** Obtains and renews the certificate in the background, from now on. */
  startAcme(signal?: AbortSignal): void {
    const { acme, hostname, log } = this.o;
    if (!acme || !hostname || this.acme) return;
    this.acme = new AcmeService({
      hostname,
      email: acme.email,
      sslDir: this.o.sslDir,
      dataDir: this.o.dataDir,
      directoryUrl: acme.directory,
      caFile: acme.caFile,
      challenges: this.challenges,
    });
    this.acme.on('issued', (info) => {
      log.info(`ACME: certificate for ${info.names.join(', ')} issued, valid until ${info.notAfter.toISOString()}`, { service: this.name });
      void this.store.reload();
    });
    this.acme.on('error', (err) => log.warn(`ACME: ${err.message}`, { service: this.name }));
    this.acme.on('info', (m) => log.info(`ACME: ${m}`, { service: this.name }));
    this.acme.start(signal);
  }

  /** Where the gateway forwards /.well-known/acme-challenge/; undefined without ACME. */
  challengeUrl(): URL | undefined {
    return this.port ? new URL(`http://127.0.0.1:${this.port}`) : undefined;
  }

  /** The certificate for the gateway's HTTPS listeners. */
  source(): TlsSource {
    return certStoreSource(this.store);
  }

  async stop(): Promise<void> {
    await this.acme?.stop();
    this.acme = undefined;
    this.store.stop();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  health(): Health {
    const cert = this.store.health();
    const acme = this.acme?.health();
    const ok = cert.ok && (acme?.ok ?? true);
    const detail = acme && !acme.ok ? `${cert.detail}; ACME: ${acme.detail}` : cert.detail;
    return { ...cert, ok, detail, ...(acme ? { acme } : {}) };
  }
}
