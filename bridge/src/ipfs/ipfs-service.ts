import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Helia } from '@helia/interface';
import type Database from 'better-sqlite3';
import type { CID } from 'multiformats/cid';
import type { IpfsConfig } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from '../service.js';
import { heliaBlocks, type Blocks } from './blocks.js';
import { createIpfsGateway } from './gateway/ipfs-gateway.js';
import { openIpfsDb } from './ipfs-db.js';
import { openIpfsNode, type IpfsNode } from './ipfs-node.js';
import { mkdir } from 'node:fs/promises';
import type { Libp2p } from '@libp2p/interface';
import { freePort } from '../util/free-port.js';
import { bridgeLibp2pOptions } from './libp2p/libp2p-options.js';
import { loadOrCreatePeerKey } from './libp2p/peer-key.js';
import { onion3Multiaddr } from './onion3/index.js';
import { libp2pPeerClient } from './fill/libp2p-peer-client.js';
import { startPeerPayments, type PeerPayments, type PeerPaymentsOptions } from './p2p/index.js';
import { Popularity, type CidKind } from './popularity.js';
import { Publisher, type Published } from './publisher.js';
import { StorageLock } from './storage-lock.js';
import { PinStore } from './pins.js';
import { TopList, type TopEntry } from './top.js';
import { Filler, pinStoreFillStorage, httpPeerClient, type FillProgress, type FillSummary } from './fill/index.js';
import { FilledTable } from './fill/filled-table.js';
import type { SocksProxy } from '../util/http-stream.js';

export interface IpfsServiceOptions {
  config: IpfsConfig;
  wwwDir: string;
  log: Logger;
  /** Tor's SOCKS port, through which fill reaches peers' onions; undefined while tor is not ready. */
  socks?: (signal?: AbortSignal) => Promise<SocksProxy | undefined>;
  /** Delay of the first automatic fill after start (tor must bootstrap first). Default 60 s. */
  firstFillDelayMs?: number;
  /**
   * libp2p over /onion3 and bitswap with peers. `onion` is known before tor starts
   * (TorService.prepareAddress); tor's HiddenServicePort <virtualPort> must point at p2pTarget().
   */
  p2p?: { onion: () => string; virtualPort: number };
}

/** A fill asked for while tor cannot carry it yet. */
export class TorNotReadyError extends Error {
  constructor() {
    super('tor is not ready to reach peers yet (still bootstrapping, or started without PEERS); try again in a minute');
    this.name = 'TorNotReadyError';
  }
}

export interface IpfsServiceEvents {
  /** A root of WWW_DIR was published (on start, and after each edit that changed it). */
  published: [Published];
}

/**
 * The embedded IPFS node and what runs on it: the publisher of WWW_DIR, the trustless gateway (on
 * a loopback port, which the proxy forwards `/ipfs/` to, so visitors' bytes are metered like the
 * site's), the request counts and the top N that peers read.
 */
export class IpfsService extends EventEmitter<IpfsServiceEvents> implements Service {
  readonly name = 'ipfs';
  private helia: Helia | undefined;
  private db: Database.Database | undefined;
  private popularity: Popularity | undefined;
  private publisher: Publisher | undefined;
  private topList: TopList | undefined;
  private server: Server | undefined;
  private port = 0;
  private blocksStore: Blocks | undefined;
  private lastError: string | undefined;
  private filled: FilledTable | undefined;
  private libp2p: Libp2p | undefined;
  private peerPayments: PeerPayments | undefined;
  private p2pPort = 0;
  private pins: PinStore | undefined;
  private fillRun: Promise<FillSummary> | undefined;
  private fillTimer: NodeJS.Timeout | undefined;
  private lastFill: { at: number; summary?: FillSummary; error?: string } | undefined;
  private readonly stopping = new AbortController();
  readonly lock = new StorageLock();
  /** Running totals for /metrics. */
  private readonly counters = { blocksServed: 0, blocksFilled: 0, filledBytes: 0 };

  constructor(private readonly o: IpfsServiceOptions) {
    super();
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { config, log } = this.o;
    const node = await this.openNode(signal);
    this.helia = node.helia;
    this.libp2p = node.libp2p;
    this.db = openIpfsDb(config.dir);
    const blocks = (this.blocksStore = heliaBlocks(this.helia));
    const popularity = (this.popularity = new Popularity({ db: this.db, halfLifeMs: config.halfLifeMs }));
    this.topList = new TopList({ popularity, blocks });
    const handler = createIpfsGateway({
      blocks,
      // Only what is stored here counts: random CIDs must not crowd the list peers read.
      onRootRequested: (cid) => void blocks.has(cid).then((has) => has && popularity.count(cid.toString(), 'root'), () => {}),
      onBlockServed: (cid) => {
        popularity.count(cid.toString(), 'block');
        this.counters.blocksServed++;
      },
      onError: (err) => log.warn(`gateway: ${err.message}`, { service: this.name }),
    });
    this.server = createServer(handler);
    this.port = await new Promise<number>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve((this.server!.address() as { port: number }).port));
    });

    this.pins = new PinStore(this.db, blocks, node.stored);
    this.publisher = new Publisher({ helia: this.helia, store: node.store, pins: this.pins, wwwDir: this.o.wwwDir, lock: this.lock, db: this.db, keepVersions: config.keepVersions, log });
    this.publisher.on('published', (p) => {
      this.lastError = undefined;
      log.info(`published ${this.o.wwwDir}: ${p.files} files, ${p.bytes} bytes in ${Math.round(p.ms)} ms`, { service: this.name });
      this.emit('published', p);
    });
    this.publisher.on('error', (err) => (this.lastError = err.message));
    try {
      await this.publisher.publish(signal);
    } catch (err) {
      // The site is still served over HTTP; IPFS catches up on the next edit.
      if (signal?.aborted) throw err;
      this.lastError = (err as Error).message;
      log.error(`publishing ${this.o.wwwDir} to IPFS failed: ${this.lastError}`, { service: this.name });
    }
    this.publisher.watch();

    this.filled = new FilledTable(this.db);
    if (config.peers.length > 0) this.scheduleFill(this.o.firstFillDelayMs ?? Math.min(60_000, config.fillIntervalMs));
  }

  /**
   * Fills from `peers` (default PEERS) now, through tor. One fill at a time: a second one (from the
   * CLI while the timer's runs) is refused with a message saying so.
   */
  async fill(options: { peers?: readonly string[]; signal?: AbortSignal; progress?: (p: FillProgress) => void } = {}): Promise<FillSummary> {
    if (this.fillRun) throw new Error('a fill is already running on this bridge; wait for it to finish');
    const run = this.runFill(options);
    this.fillRun = run;
    try {
      return await run;
    } finally {
      this.fillRun = undefined;
    }
  }

  private async runFill(options: { peers?: readonly string[]; signal?: AbortSignal; progress?: (p: FillProgress) => void }): Promise<FillSummary> {
    const { config, log } = this.o;
    if (!this.helia || !this.db || !this.popularity) throw new Error('the IPFS node is not running');
    const peers = options.peers ?? config.peers;
    if (peers.length === 0) throw new Error('no peers to fill from: set PEERS to their onion addresses (comma-separated)');
    const signal = options.signal ? AbortSignal.any([options.signal, this.stopping.signal]) : this.stopping.signal;
    // FILL_MAX_SPEND is a budget per fill run.
    this.peerPayments?.payer?.resetBudget();
    const socks = await this.o.socks?.(signal);
    if (!socks) throw new TorNotReadyError();
    const popularity = this.popularity;
    // A Filler per run: the SOCKS port can change when tor restarts; the table and the lock are shared.
    const filler = new Filler({
      storage: pinStoreFillStorage(this.pins!, this.blocks(), this.lock),
      db: this.db,
      peers: this.peerClient(socks, log),
      reserveBytes: config.fillReserveBytes,
      topN: config.fillTopN,
      localScore: (cid) => popularity.score(cid.toString()),
      log: log.child({ service: 'fill' }),
      progress: options.progress,
    });
    try {
      const summary = await filler.fill(peers, { signal });
      this.lastFill = { at: Date.now(), summary };
      this.counters.blocksFilled += summary.blocks;
      this.counters.filledBytes += summary.bytes;
      return summary;
    } catch (err) {
      this.lastFill = { at: Date.now(), error: (err as Error).message };
      throw err;
    }
  }

  /** Peers over libp2p where they run it, else over their HTTP gateway; both through tor. */
  private peerClient(socks: SocksProxy, log: Logger) {
    const http = httpPeerClient({ transport: { socks } });
    const helia = this.helia!;
    if (!this.libp2p) return http;
    return libp2pPeerClient({
      http,
      transport: { socks },
      libp2p: this.libp2p,
      // Online: bitswap asks the peers we are connected to (the one fill just dialed).
      getBlock: async (cid, { signal }) => {
        const chunks: Uint8Array[] = [];
        for await (const c of helia.blockstore.get(cid, { signal })) chunks.push(c);
        return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      },
      onFallback: (peer, why) => log.info(`fill: ${peer} over its HTTP gateway: ${why}`, { service: 'fill' }),
    });
  }

  private scheduleFill(delayMs: number): void {
    this.fillTimer = setTimeout(() => {
      const { log, config } = this.o;
      this.fill().then(
        (s) => log.info(`fill: ${s.dags} DAGs, ${s.bytes} bytes from ${s.peers.filter((p) => p.status === 'ok').length}/${s.peers.length} peers`, { service: 'fill' }),
        (err: Error) => {
          if (!this.stopping.signal.aborted) log.warn(`fill failed: ${err.message}`, { service: 'fill' });
        },
      ).finally(() => {
        if (!this.stopping.signal.aborted) this.scheduleFill(config.fillIntervalMs);
      });
    }, delayMs);
    this.fillTimer.unref();
  }

  private async openNode(signal?: AbortSignal): Promise<IpfsNode> {
    const { config } = this.o;
    if (!this.o.p2p) return openIpfsNode(config.dir, { signal });
    await mkdir(config.dir, { recursive: true, mode: 0o700 });
    this.p2pPort = await freePort('127.0.0.1');
    const p2p = bridgeLibp2pOptions({
      privateKey: await loadOrCreatePeerKey(config.dir),
      onion: this.o.p2p.onion(),
      virtualPort: this.o.p2p.virtualPort,
      localPort: this.p2pPort,
      socks: async () => this.o.socks?.(),
    });
    return openIpfsNode(config.dir, { signal, p2p });
  }

  /** Blocks served by the gateway, and blocks and bytes filled from peers, since start. */
  stats(): { blocksServed: number; blocksFilled: number; filledBytes: number } {
    return { ...this.counters };
  }

  /** The last fill's time and outcome, for the dashboard. */
  lastFillStatus(): Record<string, unknown> | undefined {
    const f = this.lastFill;
    return f && { at: new Date(f.at).toISOString(), ...(f.error ? { error: f.error } : { dags: f.summary!.dags, bytes: f.summary!.bytes, peers: f.summary!.peers.length }) };
  }

  /** Where tor's HiddenServicePort for libp2p must point; undefined without libp2p. Valid after start. */
  p2pTarget(): string | undefined {
    return this.libp2p ? `127.0.0.1:${this.p2pPort}` : undefined;
  }

  /** This node's peer ID and its one address, /onion3/<onion>:<port>/p2p/<id>; undefined without libp2p. */
  identity(): { id: string; multiaddrs: string[] } | undefined {
    if (!this.libp2p || !this.o.p2p) return undefined;
    const id = this.libp2p.peerId.toString();
    return { id, multiaddrs: [`${onion3Multiaddr(this.o.p2p.onion(), this.o.p2p.virtualPort).toString()}/p2p/${id}`] };
  }

  /** Each libp2p peer, for the admin API: ID, address, bytes, requested and paid, throttled. */
  peers(): object[] {
    return this.peerPayments?.stats() ?? [];
  }

  /**
   * Meters bitswap per peer, asks peers past IPFS_FREE_BYTES to pay over /torplus/payment/1.0.0 and
   * throttles them unpaid, and pays the requests this node gets while it fills. Called once the
   * payments service has started (requests are made through it); without libp2p it does nothing.
   */
  async startPeerPayments(o: Omit<PeerPaymentsOptions, 'libp2p' | 'log'>): Promise<void> {
    if (!this.libp2p || this.peerPayments) return;
    this.peerPayments = await startPeerPayments({ ...o, libp2p: this.libp2p, log: this.o.log });
  }

  /** Where the proxy forwards `/ipfs/` requests. Valid after start. */
  gatewayUrl(): URL {
    return new URL(`http://127.0.0.1:${this.port}`);
  }

  /** The newest published root of the site. */
  root(): CID | undefined {
    return this.publisher?.current();
  }

  async top(n: number, kind?: CidKind, signal?: AbortSignal): Promise<TopEntry[]> {
    if (!this.topList) throw new Error('the IPFS node is not running');
    return this.topList.top(n, kind, signal);
  }

  blocks(): Blocks {
    if (!this.blocksStore) throw new Error('the IPFS node is not running');
    return this.blocksStore;
  }

  async stop(): Promise<void> {
    this.stopping.abort(new Error('the bridge is stopping'));
    clearTimeout(this.fillTimer);
    await this.fillRun?.catch(() => undefined);
    await this.peerPayments?.stop();
    this.peerPayments = undefined;
    await this.publisher?.close();
    if (this.server) {
      const s = this.server;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    }
    this.popularity?.close();
    await this.helia?.stop();
    this.db?.close();
    this.libp2p = undefined;
    this.server = this.helia = this.db = this.popularity = this.publisher = this.topList = this.filled = this.pins = undefined;
  }

  health(): Health {
    if (!this.helia) return { ok: false, detail: 'not started' };
    const root = this.root()?.toString();
    const versions = this.publisher?.versions().length ?? 0;
    const fill = this.lastFill && {
      at: new Date(this.lastFill.at).toISOString(),
      ...(this.lastFill.error ? { error: this.lastFill.error } : { dags: this.lastFill.summary!.dags, bytes: this.lastFill.summary!.bytes }),
    };
    const filled = { filledBytes: this.filled?.usedBytes() ?? 0, reserveBytes: this.o.config.fillReserveBytes, ...(fill ? { lastFill: fill } : {}) };
    if (this.lastError) return { ok: false, detail: `publishing failed: ${this.lastError}`, root, versions, ...filled };
    return { ok: root !== undefined, detail: root ? `publishing /ipfs/${root}` : 'nothing published yet', root, versions, ...filled };
  }
}
