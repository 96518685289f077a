import { isInline } from '../dag.js';
import { RAW_TYPE } from './accept.js';
import type { RequestContext } from './context.js';
import { setContentHeaders, setContentLocation } from './context.js';
import { ifNoneMatch } from './http-util.js';
import { resolveTerminal } from './resolve.js';

/** `?format=raw`: the terminal block's bytes, which the client checks against the CID itself. */
export async function serveRawBlock(ctx: RequestContext): Promise<void> {
  const { res } = ctx;
  const t = await resolveTerminal(ctx.fs, ctx.reader, ctx.path, ctx.signal);
  const etag = `"${t.cid}.raw"`;
  setContentHeaders(ctx, t.roots);
  setContentLocation(ctx, 'raw');
  res.setHeader('ETag', etag);
  if (ifNoneMatch(ctx.req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.setHeader('Content-Type', RAW_TYPE);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // attachment: raw bytes are not for rendering (trustless gateway spec).
  res.setHeader('Content-Disposition', `attachment; filename="${t.cid}.bin"`);
  res.setHeader('Content-Length', t.bytes.byteLength);
  if (ctx.head) {
    res.end();
    return;
  }
  if (!isInline(t.cid)) ctx.onBlockServed?.(t.cid, t.bytes.byteLength);
  res.end(t.bytes);
}
