import { Router } from 'express';
import { z } from 'zod';
import type { TopEntry } from '../../ipfs/top.js';
import { parse } from './http-errors.js';

/** What the API needs of the IPFS service (injected). */
export interface IpfsApi {
  top(n: number, kind: 'root' | 'block' | undefined, signal?: AbortSignal): Promise<TopEntry[]>;
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
  return r;
}
