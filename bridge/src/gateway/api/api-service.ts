import express, { type Express, type Router } from 'express';
import { createServer, type Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { createOnionListener } from '../onion-listener.js';
import type { Logger } from '../../log/logger.js';
import type { Health, Service } from '../../service.js';
import { closeGracefully, hardenServer, listen } from '../listeners.js';
import { errorHandler } from './http-errors.js';
import { openApiDocument } from './openapi.js';

export interface ApiOptions {
  host: string;
  port: number;
  log: Logger;
  /** The health of every service, for /healthz. */
  healthReport: () => Record<string, Health>;
}

/**
 * The gateway API on API_PORT (express). Visitors' traffic never passes through here: express
 * serves the API only, off the proxy's hot path.
 */
export class ApiService implements Service {
  readonly name = 'api';
  private readonly app: Express = express();
  private server: Server | undefined;
  private onion: NetServer | undefined;
  private boundPort = 0;
  private onionPort = 0;

  constructor(private readonly opts: ApiOptions) {
    this.app.disable('x-powered-by');
    this.app.set('trust proxy', false);
    this.app.get('/healthz', (_req, res) => {
      const services = this.opts.healthReport();
      const ok = Object.values(services).every((h) => h.ok);
      res.status(ok ? 200 : 503).json({ ok, services });
    });
    this.app.get('/openapi.json', (_req, res) => res.json(openApiDocument));
  }

  /** Adds a service's routes; call before start. */
  mount(path: string, router: Router): void {
    this.app.use(path, router);
  }

  port(): number {
    return this.boundPort;
  }

  /** Where tor's HiddenServicePort 8000 points: the API on the onion, behind tor's PROXY line. */
  onionTarget(): string {
    return `127.0.0.1:${this.onionPort}`;
  }

  async start(): Promise<void> {
    this.app.use((_req, res) => res.status(404).json({ error: 'not_found', message: 'no such endpoint; see /openapi.json' }));
    this.app.use(errorHandler((m) => this.opts.log.error(m, { service: this.name })));
    const server = hardenServer(createServer(this.app));
    this.server = server;
    this.boundPort = await listen(server, this.opts.port, this.opts.host);
    this.onion = createOnionListener({ onConnection: (socket) => server.emit('connection', socket) });
    this.onionPort = await listen(this.onion, 0, '127.0.0.1');
    this.opts.log.info(`API listening on ${this.opts.host}:${this.boundPort}`, { service: this.name });
  }

  async stop(): Promise<void> {
    if (this.onion) await closeGracefully(this.onion, 1000);
    if (this.server) await closeGracefully(this.server, 1000);
    this.server = this.onion = undefined;
  }

  health(): Health {
    return this.server?.listening ? { ok: true, detail: `listening on ${this.boundPort}` } : { ok: false, detail: 'not listening' };
  }
}
