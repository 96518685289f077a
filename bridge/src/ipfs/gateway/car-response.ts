import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import type { CID } from 'multiformats/cid';
import type { Blocks } from '../blocks.js';
import { carBlockPrefix, carHeader } from '../car-encode.js';
import type { DagBlock } from '../dag.js';
import { DAG_PB, isInline, RAW, walkDag } from '../dag.js';
import { CAR_CONTENT_TYPE } from './accept.js';
import type { RequestContext } from './context.js';
import { setContentHeaders, setContentLocation } from './context.js';
import { GatewayError } from './errors.js';
import { ifNoneMatch, writeChunk } from './http-util.js';
import { resolveTerminal } from './resolve.js';

export type DagScope = 'all' | 'entity' | 'block';

export function parseDagScope(query: URLSearchParams): DagScope {
  if (query.has('entity-bytes')) throw new GatewayError(400, 'entity-bytes is not supported by this gateway; use dag-scope=entity and an HTTP Range on the deserialized file');
  const scope = query.get('dag-scope') ?? 'all';
  if (scope === 'all' || scope === 'entity' || scope === 'block') return scope;
  throw new GatewayError(400, `dag-scope=${scope} is not supported; use all (the default), entity or block`);
}

/**
 * `dag-scope=entity`: what it takes to read the terminal as a whole thing. A file is its whole DAG;
 * a directory is its own block, plus its shard blocks when HAMT-sharded, but none of its children.
 * Anything else (raw, symlink, non-UnixFS) is just its block.
 */
async function* entityBlocks(cid: CID, bytes: Uint8Array, blocks: Blocks, signal: AbortSignal): AsyncGenerator<DagBlock> {
  const type = cid.code === DAG_PB ? unixfsType(bytes) : undefined;
  if (type === 'file') {
    yield* walkDag(cid, blocks, { signal });
    return;
  }
  if (!isInline(cid)) yield { cid, bytes };
  if (type === 'hamt-sharded-directory') yield* shardBlocks(bytes, blocks);
}

function unixfsType(bytes: Uint8Array): string | undefined {
  try {
    const data = dagPb.decode(bytes).Data;
    return data ? UnixFS.unmarshal(data).type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The sub-shards under a HAMT shard, depth first. In a shard, a link whose name is only the hex
 * bucket prefix (as long as the fanout needs) points at a sub-shard; longer names are entries.
 */
async function* shardBlocks(bytes: Uint8Array, blocks: Blocks): AsyncGenerator<DagBlock> {
  const node = dagPb.decode(bytes);
  const fanout = node.Data ? UnixFS.unmarshal(node.Data).fanout : undefined;
  if (fanout === undefined) return;
  const prefixLength = (Number(fanout) - 1).toString(16).length;
  for (const link of node.Links) {
    if (link.Name?.length !== prefixLength) continue;
    const child = await blocks.get(link.Hash);
    if (!isInline(link.Hash)) yield { cid: link.Hash, bytes: child };
    yield* shardBlocks(child, blocks);
  }
}

/**
 * `?format=car`: the blocks that prove the path, then the terminal's DAG in the requested scope,
 * depth first, each block once, streamed as it is read. Status and headers go out before the walk,
 * so a block found missing later cannot become a 404: the router destroys the connection instead,
 * and the client sees a chunked body without its end, never a short CAR that parses as complete.
 */
export async function serveCar(ctx: RequestContext): Promise<void> {
  const { res, signal } = ctx;
  const scope = parseDagScope(ctx.path.query);
  const t = await resolveTerminal(ctx.fs, ctx.reader, ctx.path, signal);
  const walkable = isInline(t.cid) || t.cid.code === DAG_PB || t.cid.code === RAW;
  if (scope !== 'block' && !walkable) {
    throw new GatewayError(501, `${t.cid} uses codec 0x${t.cid.code.toString(16)}; this gateway walks only dag-pb and raw (dag-scope=block works for any codec)`);
  }
  const etag = scope === 'all' ? `"${t.cid}.car"` : `"${t.cid}.${scope}.car"`;
  setContentHeaders(ctx, t.roots);
  setContentLocation(ctx, 'car');
  res.setHeader('ETag', etag);
  if (ifNoneMatch(ctx.req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.setHeader('Content-Type', CAR_CONTENT_TYPE);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Disposition', `attachment; filename="${t.cid}.car"`);
  res.setHeader('Accept-Ranges', 'none');
  if (ctx.head) {
    res.end();
    return;
  }
  const blocks = ctx.reader.asBlocks();
  const sent = new Set<string>();
  const send = async (b: DagBlock) => {
    const key = b.cid.toString();
    if (sent.has(key)) return; // dups=n across the path and the DAG, not just within the walk
    sent.add(key);
    await writeChunk(res, carBlockPrefix(b.cid, b.bytes.byteLength), signal);
    await writeChunk(res, b.bytes, signal);
    ctx.onBlockServed?.(b.cid, b.bytes.byteLength);
  };
  await writeChunk(res, carHeader(t.cid), signal);
  for (const b of t.pathBlocks) await send(b);
  if (scope === 'block') {
    if (!isInline(t.cid)) await send({ cid: t.cid, bytes: t.bytes });
  } else if (scope === 'entity') {
    for await (const b of entityBlocks(t.cid, t.bytes, blocks, signal)) await send(b);
  } else {
    for await (const b of walkDag(t.cid, blocks, { signal })) await send(b);
  }
  res.end();
}
