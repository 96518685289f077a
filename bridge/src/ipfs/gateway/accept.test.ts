import { negotiate, parseAccept } from './accept.js';
import { GatewayError } from './errors.js';

const q = (s = '') => new URLSearchParams(s);

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError');
}

describe('parseAccept', () => {
  it('orders by q, keeps the client order among equals, drops q=0 and junk', () => {
    const r = parseAccept('text/html;q=0.5, application/vnd.ipld.raw;q=0, application/vnd.ipld.car ; version=1;order="dfs", nonsense, */*;q=0.5, image/png;q=2');
    expect(r.map((m) => [m.type, m.q])).toEqual([
      ['application/vnd.ipld.car', 1],
      ['text/html', 0.5],
      ['*/*', 0.5],
    ]);
    expect(r[0]!.params).toEqual({ version: '1', order: 'dfs' });
  });

  it('does not split inside a quoted parameter', () => {
    const r = parseAccept('a/b;x="1,2;3", c/d');
    expect(r.map((m) => m.type)).toEqual(['a/b', 'c/d']);
    expect(r[0]!.params['x']).toBe('1,2;3');
  });

  it('lowercases types and parameter names', () => {
    const r = parseAccept('Application/VND.IPLD.CAR; VERSION=1');
    expect(r[0]).toEqual({ type: 'application/vnd.ipld.car', params: { version: '1' }, q: 1 });
  });
});

describe('negotiate', () => {
  it('lets ?format= decide when present', () => {
    expect(negotiate(q('format=car'), 'application/vnd.ipld.raw')).toEqual({ format: 'car', viaAccept: false });
    expect(negotiate(q('format=raw'), undefined)).toEqual({ format: 'raw', viaAccept: false });
  });

  it('reads Accept otherwise', () => {
    expect(negotiate(q(), undefined)).toEqual({ format: 'deserialized', viaAccept: false });
    expect(negotiate(q(), 'application/vnd.ipld.raw')).toEqual({ format: 'raw', viaAccept: true });
    expect(negotiate(q(), 'application/vnd.ipld.car;order=unk')).toEqual({ format: 'car', viaAccept: true });
    expect(negotiate(q(), 'text/html, application/vnd.ipld.car;q=0.9')).toEqual({ format: 'deserialized', viaAccept: false });
    expect(negotiate(q(), 'application/vnd.ipld.car;dups=y, application/vnd.ipld.car;dups=n;q=0.5')).toEqual({ format: 'car', viaAccept: true });
    expect(negotiate(q(), 'application/x-tar, */*;q=0.1')).toEqual({ format: 'deserialized', viaAccept: false });
  });

  it('406s when every acceptable type is one it cannot produce', () => {
    expect(refusal(() => negotiate(q(), 'application/vnd.ipld.car;version=2')).status).toBe(406);
    expect(refusal(() => negotiate(q(), 'application/vnd.ipld.dag-json')).status).toBe(406);
  });

  it('400s unsupported formats and CAR parameters, saying what is supported', () => {
    const tar = refusal(() => negotiate(q('format=tar'), undefined));
    expect(tar.status).toBe(400);
    expect(tar.message).toMatch(/format=tar is not supported.*format=raw.*format=car/);
    expect(refusal(() => negotiate(q('format=car&car-dups=y'), undefined)).message).toMatch(/dups=y/);
    expect(negotiate(q('format=car&car-version=1&car-order=dfs&car-dups=n'), undefined).format).toBe('car');
  });
});
