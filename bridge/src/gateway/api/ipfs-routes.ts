import { Router } from 'express';
import { z } from 'zod';
import type { TopEntry } from '../../ipfs/top.js';
import { parse } from './http-errors.js';
import type { Secret } from '../../config/secret.js';
import { requireAdmin } from './admin-token.js';
import { toApiJson } from './json.js';

/** What the API needs of the IPFS service (injected). */
export interface IpfsApi {
  top(n: number, kind: 'root' | 'block' | undefined, signal?: AbortSignal): Promise<TopEntry[]>;
  /** This node's libp2p identity, for peers that know only the onion; undefined without libp2p. */
  identity(): { id: string; multiaddrs: string[] } | undefined;
  /** Each libp2p peer: ID, address, bytes, payments, throttle. */
  peers(): object[];
}

const topQuery = z
  .object({
    n: z.coerce.number({ error: 'expected a number' }).int('expected a whole number').min(1, 'expected 1 to 100').max(100, 'expected 1 to 100').default(10),
    kind: z.enum(['root', 'block', 'all'], { error: 'expected root, block or all' }).default('all'),
  })
  .strict();

/**
 * What peers read to decide what to fill: this bridge's most requested CIDs, with their decayed
 * counts and DAG sizes. Public, on API_PORT and the onion's port 8000: popularity is not a secret,
 * and peers know each other only by onion address.
 */
export function ipfsRouter(ipfs: IpfsApi): Router {
  const r = Router();
  r.get('/ipfs/top', async (req, res) => {
    const q = parse(topQuery, req.query);
    const ac = new AbortController();
    res.once('close', () => ac.abort());
    const top = await ipfs.top(q.n, q.kind === 'all' ? undefined : q.kind, ac.signal);
    res.set('Cache-Control', 'no-store').json({ top, generatedAt: new Date().toISOString() });
  });
  r.get('/ipfs/id', (_req, res) => {
    const id = ipfs.identity();
    if (!id) res.status(404).json({ error: 'no_libp2p', message: 'this bridge does not run libp2p; fetch over the gateway (/ipfs/…?format=car)' });
    else res.set('Cache-Control', 'no-store').json(id);
  });
  return r;
}

/** The publisher's view of its IPFS peers. Bearer token only. */
export function ipfsAdminRouter(ipfs: IpfsApi, token: Secret): Router {
  const r = Router();
  r.get('/ipfs/peers', requireAdmin(token), (_req, res) => {
    res.set('Cache-Control', 'no-store').json(toApiJson({ peers: ipfs.peers() }));
  });
  return r;
}
