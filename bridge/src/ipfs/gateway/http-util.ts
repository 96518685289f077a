import type { ServerResponse } from 'node:http';
import { ClientGoneError } from './errors.js';

/** Content under /ipfs/ never changes (path gateway spec: MUST for immutable resources). */
export const IMMUTABLE = 'public, max-age=29030400, immutable';

/**
 * Writes one chunk and waits while the socket buffer is full, so a slow client slows the block reads
 * down instead of the whole DAG piling up in memory. Rejects with ClientGoneError once the client
 * has left, which ends whatever loop is producing chunks.
 */
export async function writeChunk(res: ServerResponse, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.destroyed) throw new ClientGoneError();
  if (res.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      res.off('drain', onDrain);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onAbort = () => done(new ClientGoneError());
    res.on('drain', onDrain);
    signal.addEventListener('abort', onAbort);
  });
}

/** A plain-text answer, for errors and redirects. Errors are not cached: a block may be filled later. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  options: { head: boolean; headers?: Record<string, string> },
): void {
  const body = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (status >= 400) res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(options.headers ?? {})) res.setHeader(k, v);
  res.setHeader('Content-Length', body.byteLength);
  res.end(options.head ? undefined : body);
}

/**
 * RFC 9110 If-None-Match uses the weak comparison: `W/"x"` matches `"x"`. A list, or `*` (which
 * matches any existing representation; we only get here once the content resolved).
 */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  const mine = opaque(etag);
  return header.split(',').some((t) => t.trim() === '*' || opaque(t) === mine);
}
