import { connect } from 'node:net';
import { unixfs } from '@helia/unixfs';
import { base36 } from 'multiformats/bases/base36';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2';
import { addSite, BIG_SIZE, fetch, removeDir, startGateway, type Gateway, type Site } from './test-support/fixture.js';

let gw: Gateway;
let site: Site;

beforeAll(async () => {
  gw = await startGateway();
  site = await addSite(gw.helia);
});

afterAll(async () => {
  await gw?.close();
  if (site) await removeDir(site.dir);
});

beforeEach(() => {
  gw.blocks.missing.clear();
  gw.blocks.delayMs = 0;
  gw.served.length = 0;
  gw.roots.length = 0;
  gw.errors.length = 0;
});

afterEach(() => {
  // Every test also checks that nothing unexpected reached the error log.
  expect(gw.errors).toEqual([]);
});

const cid = (p: string) => site.cids.get(p)!.toString();
const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(gw.base, path, { headers, method });

describe('files', () => {
  it('serves a file with its type, length, caching and IPFS headers', async () => {
    const r = await get(`/ipfs/${site.root}/sub/nested.txt`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('nested\n');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-length']).toBe('7');
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['etag']).toBe(`"${cid('sub/nested.txt')}"`);
    expect(r.headers['cache-control']).toBe('public, max-age=29030400, immutable');
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${site.root}/sub/nested.txt`);
    expect(r.headers['x-ipfs-roots']).toBe(`${site.root},${cid('sub')},${cid('sub/nested.txt')}`);
    expect(gw.roots.map(String)).toEqual([site.root.toString()]);
  });

  it.each([
    ['page.html', 'text/html; charset=utf-8'],
    ['sub/deeper/x.json', 'application/json; charset=utf-8'],
    ['site/style.css', 'text/css; charset=utf-8'],
    ['blob.zzzunknown', 'application/octet-stream'],
  ])('gives %s the Content-Type %s', async (file, type) => {
    const r = await get(`/ipfs/${site.root}/${file}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.body.equals(site.files.get(file)!)).toBe(true);
  });

  it('serves a bare file CID as application/octet-stream', async () => {
    const r = await get(`/ipfs/${cid('hello.txt')}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.body.toString()).toBe('hello, world\n');
    expect(r.headers['x-ipfs-roots']).toBe(cid('hello.txt'));
  });

  it('accepts a CIDv0 and a base36 CIDv1, keeping the requested form in X-Ipfs-Path', async () => {
    const v0 = await unixfs(gw.helia).addBytes(new TextEncoder().encode('old style\n'), { cidVersion: 0, rawLeaves: false });
    expect(v0.toString()).toMatch(/^Qm/);
    const r = await get(`/ipfs/${v0}`);
    expect([r.status, r.body.toString()]).toEqual([200, 'old style\n']);
    expect(r.headers['etag']).toBe(`"${v0}"`);
    const k = site.root.toString(base36);
    const dir = await get(`/ipfs/${k}/sub/nested.txt`);
    expect([dir.status, dir.body.toString()]).toEqual([200, 'nested\n']);
    expect(dir.headers['x-ipfs-path']).toBe(`/ipfs/${k}/sub/nested.txt`);
    expect(String(dir.headers['x-ipfs-roots']).split(',')[0]).toBe(site.root.toString());
  });

  it('decodes percent-encoded names and serves empty files', async () => {
    const r = await get(`/ipfs/${site.root}/a%20b.txt`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('space\n');
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${site.root}/a%20b.txt`);
    const e = await get(`/ipfs/${site.root}/empty.txt`);
    expect(e.status).toBe(200);
    expect(e.headers['content-length']).toBe('0');
    expect(e.body.byteLength).toBe(0);
  });

  it('streams a multi-block file whole, reporting every block it read', async () => {
    const r = await get(`/ipfs/${site.root}/big.bin`);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(BIG_SIZE));
    expect(r.body.equals(site.files.get('big.bin')!)).toBe(true);
    const big = cid('big.bin');
    const servedKeys = gw.served.map((s) => s.cid.toString());
    // root dir + file root + 5 full leaves + 1 partial leaf, each once
    expect(servedKeys).toContain(site.root.toString());
    expect(servedKeys).toContain(big);
    expect(gw.served.filter((s) => s.cid.code === raw.code)).toHaveLength(Math.ceil(BIG_SIZE / 262144));
    expect(new Set(servedKeys).size).toBe(servedKeys.length);
  });
});

describe('ranges', () => {
  const big = () => site.files.get('big.bin')!;
  const path = () => `/ipfs/${site.root}/big.bin`;

  it('answers bytes=a-b with 206 and Content-Range, across a leaf boundary', async () => {
    const r = await get(path(), { Range: 'bytes=262140-262149' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 262140-262149/${BIG_SIZE}`);
    expect(r.headers['content-length']).toBe('10');
    expect(r.body.equals(big().subarray(262140, 262150))).toBe(true);
  });

  it('reads only the leaves the range covers', async () => {
    const r = await get(path(), { Range: 'bytes=600000-600009' });
    expect(r.status).toBe(206);
    expect(r.body.equals(big().subarray(600000, 600010))).toBe(true);
    const leaves = gw.served.filter((s) => s.cid.code === raw.code);
    expect(leaves).toHaveLength(1);
  });

  it('answers bytes=a- and bytes=-n', async () => {
    const open = await get(path(), { Range: `bytes=${BIG_SIZE - 5}-` });
    expect(open.status).toBe(206);
    expect(open.headers['content-range']).toBe(`bytes ${BIG_SIZE - 5}-${BIG_SIZE - 1}/${BIG_SIZE}`);
    expect(open.body.equals(big().subarray(BIG_SIZE - 5))).toBe(true);
    const suffix = await get(path(), { Range: 'bytes=-7' });
    expect(suffix.status).toBe(206);
    expect(suffix.headers['content-range']).toBe(`bytes ${BIG_SIZE - 7}-${BIG_SIZE - 1}/${BIG_SIZE}`);
    expect(suffix.body.equals(big().subarray(BIG_SIZE - 7))).toBe(true);
  });

  it('clamps an end past the file', async () => {
    const r = await get(`/ipfs/${site.root}/hello.txt`, { Range: 'bytes=7-1000' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe('bytes 7-12/13');
    expect(r.body.toString()).toBe('world\n');
  });

  it('answers an unsatisfiable range with 416 and bytes */size', async () => {
    const r = await get(path(), { Range: `bytes=${BIG_SIZE}-` });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${BIG_SIZE}`);
    expect(r.headers['etag']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('sends the whole file for several ranges, a malformed Range, or a stale If-Range', async () => {
    const cases: Array<Record<string, string>> = [
      { Range: 'bytes=0-1,5-6' },
      { Range: 'bytes=9-2' },
      { Range: 'items=0-1' },
      { Range: 'bytes=0-1', 'If-Range': '"something-else"' },
    ];
    for (const headers of cases) {
      const r = await get(`/ipfs/${site.root}/hello.txt`, headers);
      expect([r.status, r.body.toString()]).toEqual([200, 'hello, world\n']);
    }
    const ok = await get(`/ipfs/${site.root}/hello.txt`, { Range: 'bytes=0-4', 'If-Range': `"${cid('hello.txt')}"` });
    expect([ok.status, ok.body.toString()]).toEqual([206, 'hello']);
  });
});

describe('directories', () => {
  it('redirects a directory without its trailing slash, keeping the query', async () => {
    const r = await get(`/ipfs/${site.root}/sub?x=1&y=%20`);
    expect(r.status).toBe(301);
    expect(r.headers['location']).toBe(`/ipfs/${site.root}/sub/?x=1&y=%20`);
    const bare = await get(`/ipfs/${site.root}`);
    expect(bare.status).toBe(301);
    expect(bare.headers['location']).toBe(`/ipfs/${site.root}/`);
  });

  it('serves index.html for a directory that has one', async () => {
    const r = await get(`/ipfs/${site.root}/site/`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body.equals(site.files.get('site/index.html')!)).toBe(true);
    expect(r.headers['etag']).toBe(`"${cid('site/index.html')}"`);
    expect(r.headers['x-ipfs-roots']).toBe(`${site.root},${cid('site')}`);
  });

  it('lists a directory without index.html, names escaped and links relative', async () => {
    const r = await get(`/ipfs/${site.root}/`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['etag']).toMatch(/^W\/"DirIndex-.+_CID-/);
    expect(r.headers['content-length']).toBe(String(r.body.byteLength));
    const html = r.body.toString();
    expect(html).toContain('weird &#60;&#38;&#62;&#34;&#39;name.txt');
    expect(html).not.toContain('<&>');
    expect(html).toContain(`href="./${encodeURIComponent('weird <&>"\'name.txt').replace(/'/g, '&#39;')}"`);
    expect(html).toContain('href="./sub"');
    expect(html).toContain('href="./a%20b.txt"');
    expect(html).toContain(cid('big.bin'));
    expect(html).toContain('1.2 MiB');
    expect(html).not.toContain('href="../"'); // the root has no parent
    const sub = (await get(`/ipfs/${site.root}/sub/`)).body.toString();
    expect(sub).toContain('href="../"');
    expect(sub).toContain('href="./deeper"');
  });

  it('a link from the listing resolves', async () => {
    const html = (await get(`/ipfs/${site.root}/`)).body.toString();
    const href = /href="\.\/(weird[^"]*)"/.exec(html)![1]!.replace(/&#39;/g, "'");
    const r = await get(`/ipfs/${site.root}/${href}`);
    expect([r.status, r.body.toString()]).toEqual([200, 'escaped?\n']);
  });
});

describe('conditional requests', () => {
  it('answers a matching If-None-Match with 304 and no body', async () => {
    const path = `/ipfs/${site.root}/hello.txt`;
    const etag = (await get(path)).headers['etag']!;
    gw.served.length = 0;
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await get(path, { 'If-None-Match': inm });
      expect(r.status).toBe(304);
      expect(r.body.byteLength).toBe(0);
      expect(r.headers['etag']).toBe(etag);
      expect(r.headers['cache-control']).toBe('public, max-age=29030400, immutable');
    }
    const other = await get(path, { 'If-None-Match': '"something-else"' });
    expect(other.status).toBe(200);
    expect(gw.served.filter((s) => s.cid.toString() === cid('hello.txt'))).toHaveLength(1); // only the 200 counted
  });

  it('answers 304 for a listing with its weak ETag', async () => {
    const etag = (await get(`/ipfs/${site.root}/`)).headers['etag']!;
    const r = await get(`/ipfs/${site.root}/`, { 'If-None-Match': etag });
    expect(r.status).toBe(304);
  });
});

describe('errors', () => {
  it.each([
    ['/ipfs/notacid → 400', '/ipfs/notacid', 400, /invalid CID "notacid"/],
    ['/ipfs/ → 400', '/ipfs/', 400, /missing CID/],
    ['/ipfs → 400', '/ipfs', 400, /missing CID/],
    ['/ipfs/bafy%ZZ → 400', '/ipfs/bafy%ZZ', 400, /malformed percent-encoding/],
    ['/ipns/example.com → 501', '/ipns/example.com', 501, /IPNS/],
    ['/elsewhere → 404', '/elsewhere', 404, /not an \/ipfs\/\{cid\} path/],
    ['a 5000-character path → 400', `/ipfs/x${'/a'.repeat(2500)}`, 400, /too long/],
  ])('%s', async (_label, path, status, message) => {
    const r = await get(path);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.body.toString()).toMatch(message);
  });

  it('rejects malformed percent-encoding in a path segment', async () => {
    const r = await get(`/ipfs/${site.root}/%E0%A4%A`);
    expect(r.status).toBe(400);
    expect(r.body.toString()).toMatch(/malformed percent-encoding/);
  });

  it('404s a path that does not exist, naming what is missing', async () => {
    const r = await get(`/ipfs/${site.root}/sub/nope.txt`);
    expect(r.status).toBe(404);
    expect(r.body.toString()).toContain(`no entry "nope.txt" in /ipfs/${site.root}/sub`);
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('404s a path through a file', async () => {
    const r = await get(`/ipfs/${site.root}/hello.txt/more`);
    expect(r.status).toBe(404);
    expect(r.body.toString()).toMatch(/is a file/);
  });

  it('does not let .. or . or an encoded slash move through the tree', async () => {
    for (const p of ['sub/../hello.txt', 'sub/%2E%2E/hello.txt', 'sub/./nested.txt', 'sub%2Fnested.txt']) {
      const r = await get(`/ipfs/${site.root}/${p}`);
      expect([p, r.status]).toEqual([p, 404]);
    }
  });

  it('404s a CID whose block is not stored here', async () => {
    const absent = CID.createV1(raw.code, await sha256Hasher.digest(new TextEncoder().encode('never added')));
    const r = await get(`/ipfs/${absent}`);
    expect(r.status).toBe(404);
    expect(r.body.toString()).toContain(`${absent} is not stored on this bridge`);
    expect(gw.roots.map(String)).toEqual([absent.toString()]);
  });

  it('404s when a block on the path is missing', async () => {
    gw.blocks.missing.add(cid('sub'));
    const r = await get(`/ipfs/${site.root}/sub/nested.txt`);
    expect(r.status).toBe(404);
    expect(r.body.toString()).toContain(cid('sub'));
  });

  it('412s only-if-cached for a root that is not here', async () => {
    gw.blocks.missing.add(site.root.toString());
    const r = await get(`/ipfs/${site.root}/hello.txt`, { 'Cache-Control': 'only-if-cached' });
    expect(r.status).toBe(412);
    gw.blocks.missing.clear();
    const ok = await get(`/ipfs/${site.root}/hello.txt`, { 'Cache-Control': 'only-if-cached' });
    expect(ok.status).toBe(200);
  });

  it('405s other methods with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await get(`/ipfs/${site.root}/hello.txt`, {}, method);
      expect([method, r.status, r.headers['allow']]).toEqual([method, 405, 'GET, HEAD']);
    }
  });

  it('refuses a service worker scoped to a whole CID', async () => {
    const r = await get(`/ipfs/${cid('hello.txt')}`, { 'Service-Worker': 'script' });
    expect(r.status).toBe(400);
    const inside = await get(`/ipfs/${site.root}/hello.txt`, { 'Service-Worker': 'script' });
    expect(inside.status).toBe(200);
  });

  it('reports a throwing hook to onError and still answers', async () => {
    const { createIpfsGateway } = await import('./ipfs-gateway.js');
    const { createServer } = await import('node:http');
    const errors: Error[] = [];
    const server = createServer(
      createIpfsGateway({
        blocks: gw.blocks,
        onRootRequested: () => {
          throw new Error('counter broke');
        },
        onError: (e) => errors.push(e),
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}`, `/ipfs/${site.root}/hello.txt`);
      expect(r.status).toBe(200);
      expect(errors.map((e) => e.message)).toEqual(['counter broke']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('HEAD', () => {
  /** HEAD over a raw socket: node's client would hide a body sent by mistake. */
  function rawHead(path: string): Promise<string> {
    const { port } = gw.server.address() as { port: number };
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
  }

  it('sends the headers of GET and no body, for files, listings, CARs and errors', async () => {
    const file = await rawHead(`/ipfs/${site.root}/big.bin`);
    expect(file).toMatch(/^HTTP\/1\.1 200/);
    expect(file).toContain(`Content-Length: ${BIG_SIZE}\r\n`);
    expect(file).toContain(`ETag: "${cid('big.bin')}"`);
    expect(file.endsWith('\r\n\r\n')).toBe(true);
    for (const path of [`/ipfs/${site.root}/`, `/ipfs/${site.root}?format=car`, `/ipfs/${site.root}/big.bin?format=raw`, '/ipfs/notacid', `/ipfs/${site.root}/nope`]) {
      const text = await rawHead(path);
      expect([path, text.endsWith('\r\n\r\n'), text.indexOf('\r\n\r\n') === text.length - 4]).toEqual([path, true, true]);
    }
    expect(await rawHead('/ipfs/notacid')).toMatch(/^HTTP\/1\.1 400/);
    expect(gw.served).toEqual([]); // HEAD serves no block
  });
});
