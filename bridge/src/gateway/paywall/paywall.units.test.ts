// The pay page's pure parts: which requests are navigations, the language a header asks for, templates,
// SEP-7 URIs as a wallet reads them, and the page's size and escaping.
import type { IncomingMessage } from 'node:http';
import { Keypair } from '@stellar/stellar-sdk';
import { parseSep7Pay } from '../../payments/sep7.js';
import { requestJson } from '../../payments/payment-requests.js';
import type { PaymentRequest } from '../../payments/types.js';
import { pickLanguage, LANGUAGES } from './languages/index.js';
import { isNavigation, prefersHtml } from './navigation.js';
import { renderPayPage } from './pay-page.js';
import { returnPath, Paywall } from './paywall.js';
import { requestViewOf } from './request-view.js';
import { parseTemplate } from './template.js';

const req = (method: string, headers: Record<string, string>, url = '/'): IncomingMessage => ({ method, headers, url }) as unknown as IncomingMessage;

function request(over: Partial<PaymentRequest> = {}): PaymentRequest {
  return {
    id: 'req_abcdefghijkl', service: 'tor', sessionId: 'ses_1', amount: 1_000_000n, asset: 'native', destination: Keypair.random().publicKey(),
    memoHash: 'ab'.repeat(32), creditBytes: 10 * 1048576, createdAt: 0, expiresAt: Date.now() + 600_000, status: 'open', ...over,
  };
}

describe('navigation', () => {
  it.each([
    ['a navigation with Fetch Metadata', 'GET', { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }, true],
    ['a navigation without a destination', 'GET', { 'sec-fetch-mode': 'navigate' }, true],
    ['a frame', 'GET', { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }, false],
    ['an image', 'GET', { 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image', accept: 'text/html' }, false],
    ['fetch()', 'GET', { 'sec-fetch-mode': 'cors', accept: 'text/html' }, false],
    ['an old browser asking for HTML', 'GET', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }, true],
    ['an old browser asking for an image', 'GET', { accept: 'image/webp,*/*' }, false],
    ['curl', 'GET', { accept: '*/*' }, false],
    ['a POST navigation', 'POST', { 'sec-fetch-mode': 'navigate' }, false],
    ['a range', 'GET', { 'sec-fetch-mode': 'navigate', range: 'bytes=0-1' }, false],
  ])('%s', (_name, method, headers, want) => {
    expect(isNavigation(req(method, headers as Record<string, string>))).toBe(want);
  });

  it('ranks Accept by q-values and survives hostile ones', () => {
    expect(prefersHtml('text/html;q=0.5, application/json')).toBe(false);
    expect(prefersHtml('text/html;q=0')).toBe(false);
    expect(prefersHtml('application/xhtml+xml')).toBe(true);
    expect(prefersHtml(`${'x/y;q=0.1,'.repeat(10_000)}text/html`)).toBe(false); // past the entries read
    expect(prefersHtml(';;;,,,q=,text/html;q=abc')).toBe(true);
  });
});

describe('languages', () => {
  it('picks by q-value and primary subtag, English otherwise', () => {
    expect(pickLanguage('de-AT').lang).toBe('de');
    expect(pickLanguage('fr, es;q=0.8, de;q=0.9').lang).toBe('de');
    expect(pickLanguage('ru;q=0.2, xx').lang).toBe('ru');
    expect(pickLanguage('xx, yy').lang).toBe('en');
    expect(pickLanguage(undefined).lang).toBe('en');
    expect(pickLanguage('de;q=0').lang).toBe('en');
  });

  it('has every string in every language, with the same placeholders', () => {
    const en = LANGUAGES[0]!;
    const holes = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join();
    for (const l of LANGUAGES) {
      for (const [k, v] of Object.entries(en)) {
        expect(typeof (l as unknown as Record<string, unknown>)[k]).toBe(typeof v);
        if (typeof v === 'string') expect(`${l.lang}.${k}: ${holes((l as unknown as Record<string, string>)[k]!)}`).toBe(`${l.lang}.${k}: ${holes(v)}`);
      }
    }
  });
});

describe('templates', () => {
  it('fills the placeholders once, never re-reading a value as a placeholder', () => {
    const t = parseTemplate('<html lang="{{lang}}"><head>{{ head }}</head><body class="brand">{{body}}</body></html>');
    expect(t.render({ lang: 'en', dir: 'ltr', title: 't', head: '<meta>', body: '{{head}}', nonce: 'n', site: 's' }))
      .toBe('<html lang="en"><head><meta></head><body class="brand">{{head}}</body></html>');
  });

  it('refuses a template without a required placeholder, or with an unknown one', () => {
    expect(() => parseTemplate('<html>{{head}}</html>')).toThrow('the placeholder {{body}} is missing');
    expect(() => parseTemplate('{{head}}{{body}}{{bdoy}}')).toThrow('unknown placeholder {{bdoy}}');
  });
});

describe('the page', () => {
  it('reads its request from the JSON the API serves, and refuses JSON that lacks a part', () => {
    const json = requestJson(request(), 'Test SDF Network ; September 2015', 'site.onion');
    const view = requestViewOf(json)!;
    expect(view.memoHex).toBe('ab'.repeat(32));
    expect(requestViewOf({ ...json, destination: 'not an account' })).toBeUndefined();
    expect(requestViewOf({ ...json, uri: 'javascript:alert(1)' })).toBeUndefined();
    expect(requestViewOf(null)).toBeUndefined();
  });

  it('writes a SEP-7 URI a wallet reads: destination, amount, MEMO_HASH in base64, passphrase, the site in msg', () => {
    const r = request();
    const p = parseSep7Pay(requestJson(r, 'Public Global Stellar Network ; September 2015', 'torplus.example.com').uri as string);
    expect(p).toMatchObject({ destination: r.destination, amount: '0.1', memoType: 'MEMO_HASH', networkPassphrase: 'Public Global Stellar Network ; September 2015' });
    expect(Buffer.from(p.memo!, 'base64').toString('hex')).toBe(r.memoHash);
    expect(p.msg).toBe('TorPlus: 10 MiB of reading torplus.example.com');
  });

  it('parses SEP-7 strictly', () => {
    expect(() => parseSep7Pay('web+stellar:tx?xdr=AAAA')).toThrow(/pay URI/);
    expect(() => parseSep7Pay('web+stellar:pay?destination=GABC')).toThrow(/destination/);
    const d = Keypair.random().publicKey();
    expect(() => parseSep7Pay(`web+stellar:pay?destination=${d}&amount=-1`)).toThrow(/amount/);
    expect(() => parseSep7Pay(`web+stellar:pay?destination=${d}&memo=abc&memo_type=MEMO_HASH`)).toThrow(/32 bytes/);
    expect(() => parseSep7Pay(`web+stellar:pay?destination=${d}&destination=${d}`)).toThrow(/twice/);
    expect(() => parseSep7Pay(`web+stellar:pay?destination=${d}&msg=%E0%A4%A`)).toThrow(/percent/);
    expect(parseSep7Pay(`web+stellar:pay?destination=${d}&memo=hello&memo_type=MEMO_TEXT`).memo).toBe('hello');
  });

  it('escapes what it shows, stays under 30 KB, and sends the visitor nowhere else', () => {
    const view = requestViewOf(requestJson(request(), 'p', 'x'))!;
    const html = renderPayPage(
      { request: view, state: 'open', notes: [{ kind: 'memo', received: '1', memo: '<script>x</script>' }], returnTo: '/a?b=<c>', site: '<b>evil</b>', throttleBytesPerSec: 32768, now: Date.now(), nonce: 'N' },
      LANGUAGES[0]!,
    );
    expect(html).not.toContain('<script>x');
    expect(html).not.toContain('<b>evil');
    expect(html).toContain('&lt;b&gt;evil&lt;/b&gt;');
    expect(Buffer.byteLength(html)).toBeLessThan(30_000);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('<script nonce="N">');
  });

  it('continues only to a path on this site', () => {
    expect(returnPath('/a/b?c=d')).toBe('/a/b?c=d');
    for (const bad of ['//evil.example/', '/\\evil.example', 'http://evil.example/', '/a b', '', undefined, `/${'a'.repeat(3000)}`]) expect(returnPath(bad)).toBe('/');
  });

  it('is never shown broken: a request whose JSON the page cannot read leaves the visitor throttled instead', () => {
    const p = new Paywall({ mode: 'page', throttleBytesPerSec: 1024 });
    expect(p.page(req('GET', {}), '{"id":"x"}', [])).toBeUndefined();
    expect(p.page(req('GET', {}), 'not json', [])).toBeUndefined();
  });
});
