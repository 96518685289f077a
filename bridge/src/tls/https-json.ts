import http from 'node:http';
import https from 'node:https';

/**
 * GET a JSON document (ACME directory, ARI renewalInfo) with our own CA trust, timeout and abort signal.
 * acme-client retries unreachable servers for over a minute inside each call; this plain request is how
 * the service finds out fast, with a message that names the URL.
 */
export async function getJson(url: string, opts: { ca?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
  if (!mod) throw new Error(`unsupported URL scheme in ${url}`);
  return new Promise((resolve, reject) => {
    const req = mod.get(
      u,
      { ca: opts.ca, signal: opts.signal, timeout: opts.timeoutMs ?? 10_000, headers: { accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* not JSON: callers check the shape */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
  });
}
