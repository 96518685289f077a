import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UnixFS } from '@helia/unixfs';
import type { CID } from 'multiformats/cid';
import type { Negotiated } from './accept.js';
import type { ContentPath } from './content-path.js';
import { IMMUTABLE } from './http-util.js';
import type { BlockServed, RequestBlocks } from './request-blocks.js';

/** Everything one request's handlers share. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  head: boolean;
  path: ContentPath;
  negotiated: Negotiated;
  reader: RequestBlocks;
  /** @helia/unixfs reading through `reader`, so its reads are counted and cancellable too. */
  fs: UnixFS;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  onBlockServed: BlockServed | undefined;
}

/** Headers of every successful response for content under /ipfs/ (path gateway spec). */
export function setContentHeaders(ctx: RequestContext, roots: CID[]): void {
  const { res } = ctx;
  res.setHeader('X-Ipfs-Path', ctx.path.ipfsPath);
  res.setHeader('X-Ipfs-Roots', roots.map((c) => c.toString()).join(','));
  res.setHeader('Cache-Control', IMMUTABLE);
}

/**
 * For a type chosen by Accept: the URL with ?format= that names the same response, so HTTP caches
 * that ignore Vary still keep deserialized, raw and CAR responses apart.
 */
export function setContentLocation(ctx: RequestContext, format: 'raw' | 'car'): void {
  if (!ctx.negotiated.viaAccept) return;
  const q = ctx.path.rawQuery;
  ctx.res.setHeader('Content-Location', `${ctx.path.ipfsPath}?${q ? `${q}&` : ''}format=${format}`);
}
