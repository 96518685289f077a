import mime from 'mime-types';
import type { CID } from 'multiformats/cid';
import type { RequestContext } from './context.js';
import { setContentHeaders } from './context.js';
import type { ListingEntry } from './dir-listing.js';
import { LISTING_VERSION, renderListing } from './dir-listing.js';
import { GatewayError } from './errors.js';
import { ifNoneMatch, sendText, writeChunk } from './http-util.js';
import { decideRange } from './range.js';
import type { Entry, Resolved } from './resolve.js';
import { lookup, resolveContentPath } from './resolve.js';

/** The ordinary web response: a file's bytes, a directory's index.html, or a listing. */
export async function serveDeserialized(ctx: RequestContext): Promise<void> {
  const resolved = await resolveContentPath(ctx.fs, ctx.path, ctx.signal);
  // Path blocks are held only for CARs; from here on reads stream through.
  ctx.reader.stopKeeping();
  if (resolved.entry.type === 'directory') await serveDirectory(ctx, resolved);
  else await serveFile(ctx, resolved.entry, resolved.name, resolved.roots);
}

function contentType(name: string | undefined): string {
  return (name !== undefined && mime.contentType(name)) || 'application/octet-stream';
}

async function serveDirectory(ctx: RequestContext, resolved: Resolved): Promise<void> {
  const { res, path } = ctx;
  if (!path.trailingSlash) {
    // Relative links inside the directory's pages only work under the trailing-slash URL.
    const location = `${path.ipfsPath}/${path.rawQuery ? `?${path.rawQuery}` : ''}`;
    sendText(res, 301, `${location}`, { head: ctx.head, headers: { Location: location } });
    return;
  }
  const dir = resolved.entry.cid;
  const index = await lookup(ctx.fs, dir, 'index.html', ctx.signal);
  if (index && index.type !== 'directory') {
    await serveFile(ctx, index, 'index.html', resolved.roots);
    return;
  }
  // A weak ETag: the HTML depends on this code as well as on the CID.
  const etag = `W/"DirIndex-${LISTING_VERSION}_CID-${dir}"`;
  setContentHeaders(ctx, resolved.roots);
  res.setHeader('ETag', etag);
  if (ifNoneMatch(ctx.req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (ctx.head) {
    // Listing a sharded directory reads all its shards: not worth it for headers alone.
    res.end();
    return;
  }
  ctx.reader.reportReads(ctx.onBlockServed);
  const entries: ListingEntry[] = [];
  for await (const e of ctx.fs.ls(dir, { offline: true, signal: ctx.signal })) entries.push({ name: e.name, cid: e.cid, size: e.size });
  const html = Buffer.from(renderListing({ ipfsPath: path.ipfsPath, dir, entries, hasParent: path.segments.length > 0 }), 'utf8');
  res.setHeader('Content-Length', html.byteLength);
  res.end(html);
}

async function serveFile(ctx: RequestContext, entry: Entry, name: string | undefined, roots: CID[]): Promise<void> {
  const { req, res } = ctx;
  if (entry.type === 'directory') throw new Error('serveFile called with a directory');
  if (entry.type === 'file' && entry.unixfs.type !== 'file' && entry.unixfs.type !== 'raw') {
    throw new GatewayError(501, `${ctx.path.ipfsPath} is a UnixFS ${entry.unixfs.type}, which this gateway does not serve`);
  }
  const size = Number(entry.size);
  const etag = `"${entry.cid}"`;
  setContentHeaders(ctx, roots);
  res.setHeader('ETag', etag);
  if (ifNoneMatch(req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.setHeader('Content-Type', contentType(name));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Accept-Ranges', 'bytes');
  // If-Range with anything but our (strong) ETag, e.g. a date, means "send it all".
  const ifRange = req.headers['if-range'];
  const rangeApplies = ifRange === undefined || (typeof ifRange === 'string' && ifRange.trim() === etag);
  const range = decideRange(rangeApplies ? req.headers.range : undefined, size);
  if (range.kind === 'unsatisfiable') {
    throw new GatewayError(416, `range not satisfiable: ${ctx.path.ipfsPath} has ${size} bytes`, { 'Content-Range': `bytes */${size}` });
  }
  const offset = range.kind === 'partial' ? range.start : 0;
  const length = range.kind === 'partial' ? range.end - range.start + 1 : size;
  if (range.kind === 'partial') {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  }
  res.setHeader('Content-Length', length);
  if (ctx.head || length === 0) {
    res.end();
    return;
  }
  ctx.reader.reportReads(ctx.onBlockServed);
  // cat reads only the leaves the range covers, one at a time as the socket drains.
  for await (const chunk of ctx.fs.cat(entry.cid, { offset, length, offline: true, signal: ctx.signal })) {
    await writeChunk(res, chunk, ctx.signal);
  }
  res.end();
}
