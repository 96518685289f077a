import type { IncomingMessage, ServerResponse } from 'node:http';

const PREFIX = '/.well-known/acme-challenge/';

/**
 * HTTP-01 answers while an order is pending: token → key authorization. The bridge serves them on
 * HTTP_PORT; mount `handler` (or call `get`) from whatever routes port 80.
 */
export class HttpChallengeStore {
  private readonly answers = new Map<string, string>();

  set(token: string, keyAuthorization: string): void {
    this.answers.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.answers.delete(token);
  }

  /** The key authorization for `token`, or undefined. */
  get(token: string): string | undefined {
    return this.answers.get(token);
  }

  get size(): number {
    return this.answers.size;
  }

  /**
   * A node http handler. Returns true when it answered (a challenge path: 200 with the key
   * authorization, or 404 for an unknown token); false for any other path, so the caller can go on routing.
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (!path.startsWith(PREFIX) || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const answer = this.answers.get(decodeURIComponent(path.slice(PREFIX.length)));
    if (answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown ACME challenge token\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(answer) });
      res.end(req.method === 'HEAD' ? undefined : answer);
    }
    return true;
  };
}
