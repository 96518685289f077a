import type { IncomingMessage, ServerResponse } from 'node:http';
import { unixfs } from '@helia/unixfs';
import type { CID } from 'multiformats/cid';
import type { Blocks } from '../blocks.js';
import { isInline } from '../dag.js';
import { negotiate } from './accept.js';
import { serveRawBlock } from './block-response.js';
import { serveCar } from './car-response.js';
import { parseContentPath } from './content-path.js';
import type { RequestContext } from './context.js';
import { ClientGoneError, GatewayError, isClientGone, toGatewayError } from './errors.js';
import { sendText } from './http-util.js';
import { RequestBlocks } from './request-blocks.js';
import { serveDeserialized } from './unixfs-response.js';

export interface IpfsGatewayOptions {
  /** Where every block comes from. Only local blocks: a missing one is a 404, never a network fetch. */
  blocks: Blocks;
  /** Called once per request that names a valid CID (whatever the outcome), with that root CID. */
  onRootRequested?: (root: CID) => void;
  /**
   * Called for each block that goes into a response body: each block of a raw or CAR response as it
   * is written, and each block read to produce a deserialized body (path, file leaves, directory
   * shards). Not for HEAD, 304 or error responses, and never for identity (inline) CIDs.
   */
  onBlockServed?: (cid: CID, bytes: number) => void;
  /** Unexpected failures, and responses cut short after their headers went out. */
  onError?: (err: Error) => void;
}

export type IpfsGatewayHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A path + trustless IPFS gateway for `GET`/`HEAD /ipfs/{cid}[/{path}]`, as a plain node:http
 * handler. It never rejects and never throws: every failure becomes a status, or a destroyed
 * connection once a body has started.
 */
export function createIpfsGateway(options: IpfsGatewayOptions): IpfsGatewayHandler {
  const report = (err: unknown) => {
    try {
      options.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // A failing logger must not take a request (or the process) down with it.
    }
  };
  // The counting hooks belong to the caller; if one throws, the response still completes.
  const guard = <A extends unknown[]>(fn: ((...a: A) => void) | undefined) =>
    fn &&
    ((...a: A) => {
      try {
        fn(...a);
      } catch (err) {
        report(err);
      }
    });
  const hooks = { onRootRequested: guard(options.onRootRequested), onBlockServed: guard(options.onBlockServed), report };
  return (req, res) => {
    handle(req, res, options.blocks, hooks).catch((err: unknown) => {
      report(err);
      if (!res.destroyed) res.destroy();
    });
  };
}

interface Hooks {
  onRootRequested: ((root: CID) => void) | undefined;
  onBlockServed: ((cid: CID, bytes: number) => void) | undefined;
  report: (err: unknown) => void;
}

async function handle(req: IncomingMessage, res: ServerResponse, blocks: Blocks, hooks: Hooks): Promise<void> {
  const aborter = new AbortController();
  // 'close' before the response finished means the client left: stop reading blocks for it.
  res.once('close', () => {
    if (!res.writableFinished) aborter.abort(new ClientGoneError());
  });
  const signal = aborter.signal;
  const head = req.method === 'HEAD';
  try {
    if (req.method !== 'GET' && !head) {
      throw new GatewayError(405, `method ${req.method} is not allowed here; use GET or HEAD`, { Allow: 'GET, HEAD' });
    }
    const path = parseContentPath(req.url ?? '/');
    hooks.onRootRequested?.(path.root);
    // A script served at /ipfs/{cid} itself would get /ipfs/ as its scope: every site on this origin.
    if (req.headers['service-worker'] === 'script' && path.segments.length === 0 && !path.trailingSlash) {
      throw new GatewayError(400, 'a service worker may only be registered under /ipfs/{cid}/, not for /ipfs/{cid}');
    }
    res.setHeader('Vary', 'Accept');
    const negotiated = negotiate(path.query, req.headers.accept);
    if (/\bonly-if-cached\b/i.test(req.headers['cache-control'] ?? '') && !isInline(path.root) && !(await blocks.has(path.root, { signal }))) {
      throw new GatewayError(412, `${path.root} is not stored on this bridge`);
    }
    const reader = new RequestBlocks(blocks, signal);
    const ctx: RequestContext = {
      req,
      res,
      head,
      path,
      negotiated,
      reader,
      fs: unixfs({ blockstore: reader.asBlockstore() }),
      signal,
      onBlockServed: hooks.onBlockServed,
    };
    if (negotiated.format === 'car') await serveCar(ctx);
    else if (negotiated.format === 'raw') await serveRawBlock(ctx);
    else await serveDeserialized(ctx);
  } catch (err) {
    fail(err, req, res, head, signal, hooks.report);
  }
}

function fail(err: unknown, req: IncomingMessage, res: ServerResponse, head: boolean, signal: AbortSignal, report: (err: unknown) => void): void {
  if (isClientGone(err, signal)) {
    if (!res.destroyed) res.destroy();
    return;
  }
  if (res.headersSent) {
    // Too late for a status: cutting the connection is the only signal left that the body is short.
    const why = err instanceof Error ? err.message : String(err);
    report(new Error(`${req.url}: response cut short: ${why}`, { cause: err }));
    res.destroy();
    return;
  }
  // Headers chosen for a success (ETag, immutable caching, ...) must not ride on an error.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  let known = toGatewayError(err);
  if (!known) {
    report(err);
    known = new GatewayError(500, 'internal error in the IPFS gateway');
  }
  sendText(res, known.status, known.message, { head, headers: known.headers });
}
