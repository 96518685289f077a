import { base36 } from 'multiformats/bases/base36';
import { CID } from 'multiformats/cid';
import { MAX_SEGMENTS, parseContentPath } from './content-path.js';
import { GatewayError } from './errors.js';

const V1 = 'bafkreiefh74toyvanxn7oiwe5pu53vtnr5r53lvjp5jbypwmednhzf3aea';
const V0 = 'QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB';

function status(url: string): number {
  try {
    parseContentPath(url);
  } catch (err) {
    if (err instanceof GatewayError) return err.status;
    throw err;
  }
  return 200;
}

describe('parseContentPath', () => {
  it('splits the CID, decoded segments, trailing slash and query', () => {
    const p = parseContentPath(`/ipfs/${V1}/a%20b//c%2Fd/?x=1&format=car`);
    expect(p.root.toString()).toBe(V1);
    expect(p.segments).toEqual(['a b', 'c/d']);
    expect(p.trailingSlash).toBe(true);
    expect(p.rawQuery).toBe('x=1&format=car');
    expect(p.query.get('format')).toBe('car');
    expect(p.ipfsPath).toBe(`/ipfs/${V1}/a%20b/c%2Fd/`);
  });

  it('keeps CIDv0 and other bases as requested in the path', () => {
    expect(parseContentPath(`/ipfs/${V0}`).ipfsPath).toBe(`/ipfs/${V0}`);
    expect(parseContentPath(`/ipfs/${V0}`).root.version).toBe(0);
    const k = CID.parse(V1).toString(base36);
    const p = parseContentPath(`/ipfs/${k}`);
    expect(p.ipfsPath).toBe(`/ipfs/${k}`);
    expect(p.root.toString()).toBe(V1);
  });

  it('keeps dot segments as names (resolution then finds nothing)', () => {
    expect(parseContentPath(`/ipfs/${V1}/a/../b`).segments).toEqual(['a', '..', 'b']);
  });

  it('re-encodes non-ASCII names so headers stay ASCII', () => {
    expect(parseContentPath(`/ipfs/${V1}/%E2%9C%93.txt`).ipfsPath).toBe(`/ipfs/${V1}/%E2%9C%93.txt`);
    expect(parseContentPath(`/ipfs/${V1}/%E2%9C%93.txt`).segments).toEqual(['✓.txt']);
  });

  it.each([
    ['/ipfs/', 400],
    ['/ipfs', 400],
    ['/ipfs/?format=car', 400],
    ['/ipfs/notacid', 400],
    [`/ipfs/${V1}/%E0%A4%A`, 400],
    [`/ipfs/${V1}${'/x'.repeat(MAX_SEGMENTS + 1)}`, 400],
    [`/ipfs/${V1}/${'x'.repeat(5000)}`, 400],
    ['/ipns/example.com', 501],
    ['/', 404],
    ['/ipfsx/abc', 404],
  ])('%s → %i', (url, expected) => {
    expect(status(url)).toBe(expected);
  });
});
