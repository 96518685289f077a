// Talking to another bridge: its top list (API port) and CARs of its DAGs (gateway port), over Tor's SOCKS
// port in production and directly in tests. Everything a peer sends is untrusted: the top list is validated
// here, the CAR bytes by car-blocks.ts and dag-verifier.ts.
import type { IncomingMessage } from 'node:http';
import type { CID } from 'multiformats/cid';
import { z } from 'zod';
import { httpRequest, readBody, type Transport } from '../../client/socks.js';
import { abortReason } from '../../util/http-stream.js';
import { parseCid } from '../dag.js';
import { PeerFault } from './errors.js';

/** One entry of a peer's GET /v1/ipfs/top. */
export interface TopEntry {
  cid: CID;
  /** The peer's decayed request count: how much its visitors want this. */
  count: number;
  /** Declared sum of the DAG's block bytes; the fetch is held to it. */
  dagSize: number;
  /** Declared number of blocks. */
  blocks: number;
  kind: 'root' | 'block';
}

export interface PeerClient {
  /** The peer's most requested CIDs, at most `n`, most requested first. */
  top(peer: string, n: number, options: { signal?: AbortSignal }): Promise<TopEntry[]>;
  /** The CAR v1 byte stream of the DAG under `root` (dag-scope=all, DFS, root first). Read it or abort it. */
  car(peer: string, root: CID, options: { signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>>;
}

export interface HttpPeerClientOptions {
  transport: Transport;
  /** The port the peer's API listens on behind its onion; default 8000. */
  apiPort?: number;
  /** The port the peer's gateway listens on behind its onion; default 80. */
  gatewayPort?: number;
  /** The origin to call for a peer and port; default http://<peer>:<port>. Tests point it at loopback. */
  urlFor?: (peer: string, port: number) => string;
  /** Until the response headers arrive; default 60 s (a first connection to an onion can take ~10-30 s). */
  timeoutMs?: number;
}

const V3_ONION = /^[a-z2-7]{56}\.onion$/;
/** A top list is small: ~200 bytes an entry. A larger answer is not a top list. */
const MAX_TOP_ENTRIES = 1000;
const MAX_TOP_BODY = 512 * 1024;

const topSchema = z.object({
  top: z
    .array(
      z.object({
        cid: z.string().max(256).transform((text, ctx) => {
          const cid = parseCid(text);
          if (!cid) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text.slice(0, 80))} is not a CID` });
          return cid!;
        }),
        count: z.number().finite().nonnegative(),
        dagSize: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
        blocks: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        kind: z.enum(['root', 'block']),
      }),
    )
    .max(MAX_TOP_ENTRIES),
  generatedAt: z.string().optional(),
});

function defaultUrlFor(peer: string, port: number): string {
  // The only place a peer name becomes a host name: refuse anything that is not an onion, so a bad PEERS
  // entry cannot send requests to the clearnet through tor's exits.
  if (!V3_ONION.test(peer)) throw new Error(`${JSON.stringify(peer)} is not a v3 onion address (56 base32 characters + .onion); fix PEERS`);
  return `http://${peer}:${port}`;
}

export function httpPeerClient(opts: HttpPeerClientOptions): PeerClient {
  const apiPort = opts.apiPort ?? 8000;
  const gatewayPort = opts.gatewayPort ?? 80;
  const urlFor = opts.urlFor ?? defaultUrlFor;
  const timeoutMs = opts.timeoutMs ?? 60_000;

  async function get(peer: string, url: string, accept: string, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    let res: IncomingMessage;
    try {
      res = await httpRequest(url, { transport: opts.transport, signal, timeoutMs, headers: { Accept: accept } });
    } catch (err) {
      // Our own abort (stall, deadline, shutdown) keeps its reason; anything else is the peer being unreachable.
      if (signal?.aborted) throw abortReason(signal);
      throw new PeerFault('unreachable', `cannot reach ${peer}: ${(err as Error).message}`, { cause: err });
    }
    if (res.statusCode !== 200) {
      const detail = await readBody(res, 2048, 5_000).then(
        (b) => b.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200),
        () => '',
      );
      res.destroy();
      throw new PeerFault('bad-response', `${peer} answered HTTP ${res.statusCode} to ${new URL(url).pathname}${detail ? `: ${detail}` : ''}`);
    }
    return res;
  }

  return {
    async top(peer, n, { signal }) {
      const url = `${urlFor(peer, apiPort)}/v1/ipfs/top?n=${n}`;
      const res = await get(peer, url, 'application/json', signal);
      let body: Buffer;
      try {
        body = await readBody(res, MAX_TOP_BODY, timeoutMs);
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        throw new PeerFault('bad-response', `${peer}'s top list could not be read: ${(err as Error).message}`, { cause: err });
      }
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw new PeerFault('bad-response', `${peer}'s /v1/ipfs/top answer is not JSON (is ${apiPort} its API port?)`);
      }
      const parsed = topSchema.safeParse(json);
      if (!parsed.success) {
        const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
        throw new PeerFault('bad-response', `${peer}'s /v1/ipfs/top answer is not a top list: ${issues.join('; ')}`);
      }
      // A peer may ignore n; take no more than asked.
      return parsed.data.top.slice(0, n);
    },

    async car(peer, root, { signal }) {
      const url = `${urlFor(peer, gatewayPort)}/ipfs/${root.toString()}?format=car&dag-scope=all`;
      const res = await get(peer, url, 'application/vnd.ipld.car; version=1; order=dfs; dups=n', signal);
      const type = String(res.headers['content-type'] ?? '');
      if (!type.startsWith('application/vnd.ipld.car')) {
        res.destroy();
        throw new PeerFault('bad-response', `${peer} answered ${type || 'no content type'} instead of a CAR for ${root}`);
      }
      // An IncomingMessage is an async iterable of Buffers (Uint8Arrays); the caller's signal destroys it.
      return res;
    },
  };
}
