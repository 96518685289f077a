import { parseBootstrap, parseEvent, type HsDescEvent, type StatusEvent } from './events.js';
import { ReplyParser, TorProtocolError, quote, readQuoted, tokenize } from './reply.js';

// Recorded from tor 0.4.9.11 (Debian) unless noted.
const PROTOCOLINFO =
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/tx/data/control_auth_cookie"\r\n' +
  '250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n';
const GETINFO =
  '250-version=0.4.9.11\r\n' +
  '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"\r\n' +
  '250+config-text=\r\nControlPort 127.0.0.1:auto\r\nCookieAuthentication 1\r\nDisableNetwork 1\r\n.\r\n250 OK\r\n';

describe('ReplyParser', () => {
  it('parses a multi-line reply', () => {
    const [r, ...rest] = new ReplyParser().push(PROTOCOLINFO);
    expect(rest).toHaveLength(0);
    expect(r?.code).toBe(250);
    expect(r?.lines.map((l) => l.text)).toEqual([
      'PROTOCOLINFO 1',
      'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/tx/data/control_auth_cookie"',
      'VERSION Tor="0.4.9.11"',
      'OK',
    ]);
  });

  it('parses data blocks and keeps the value after the first "=" intact', () => {
    const [r] = new ReplyParser().push(GETINFO);
    expect(r?.lines[1]?.text).toBe('status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"');
    expect(r?.lines[2]).toEqual({
      code: 250,
      sep: '+',
      text: 'config-text=',
      data: 'ControlPort 127.0.0.1:auto\nCookieAuthentication 1\nDisableNetwork 1',
    });
  });

  it('undoes dot-stuffing and keeps empty data lines', () => {
    const [r] = new ReplyParser().push('250+x=\r\n..hidden\r\n\r\n...\r\nplain\r\n.\r\n250 OK\r\n');
    expect(r?.lines[0]?.data).toBe('.hidden\n\n..\nplain');
  });

  it('gives the same result whatever the chunking', () => {
    const text = PROTOCOLINFO + GETINFO;
    const whole = new ReplyParser().push(text);
    const p = new ReplyParser();
    const bytewise = [...text].flatMap((c) => p.push(c));
    expect(bytewise).toEqual(whole);
    expect(whole).toHaveLength(2);
  });

  it('separates events from replies, in order, even inside a multi-line reply', () => {
    // Recorded: SETCONF's reply followed by a multi-line event and a one-line event.
    const recorded = '250 OK\r\n650-CONF_CHANGED\r\n650-Nickname=foo\r\n650 OK\r\n650 SIGNAL RELOAD\r\n';
    const msgs = new ReplyParser().push(recorded);
    expect(msgs.map((m) => [m.code, m.lines.length])).toEqual([[250, 1], [650, 3], [650, 1]]);
    // Constructed: an event between the lines of a GETINFO reply must not corrupt either.
    const mixed = '250-version=0.4.9.11\r\n650 SIGNAL NEWNYM\r\n250 OK\r\n';
    const [ev, reply] = new ReplyParser().push(mixed);
    expect(ev?.code).toBe(650);
    expect(reply?.lines.map((l) => l.text)).toEqual(['version=0.4.9.11', 'OK']);
  });

  it('parses a 650+ event with a data block', () => {
    const [ev] = new ReplyParser().push('650+NS\r\nr relay1 AAAA\r\ns Fast\r\n.\r\n650 OK\r\n');
    expect(ev?.lines[0]?.data).toBe('r relay1 AAAA\ns Fast');
    expect(parseEvent(ev!)).toMatchObject({ type: 'other', keyword: 'NS' });
  });

  it('accepts bare LF and rejects garbage', () => {
    expect(new ReplyParser().push('250 OK\n')[0]?.code).toBe(250);
    expect(() => new ReplyParser().push('HTTP/1.0 400 Bad\r\n')).toThrow(TorProtocolError);
  });
});

describe('tokenize and quoted strings', () => {
  it('splits positional words, KEY=VALUE and quoted values with spaces', () => {
    expect(tokenize('NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"')).toEqual([
      { value: 'NOTICE' },
      { value: 'BOOTSTRAP' },
      { key: 'PROGRESS', value: '10' },
      { key: 'TAG', value: 'conn_done' },
      { key: 'SUMMARY', value: 'Connected to a relay' },
    ]);
  });

  it('handles escaped quotes, backslashes, "=" and octal UTF-8 inside quotes', () => {
    const t = tokenize('A="say \\"hi\\" a=b \\\\ end" B="caf\\303\\251\\n" C=""');
    expect(t).toEqual([
      { key: 'A', value: 'say "hi" a=b \\ end' },
      { key: 'B', value: 'café\n' },
      { key: 'C', value: '' },
    ]);
  });

  it('rejects an unterminated quoted string', () => {
    expect(() => readQuoted('"abc\\"', 0)).toThrow(TorProtocolError);
  });

  it('quote() escapes and refuses line breaks', () => {
    expect(quote('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
    expect(readQuoted(quote('a "b" \\c'), 0).value).toBe('a "b" \\c');
    expect(() => quote('x\r\nSIGNAL HALT')).toThrow(TypeError);
  });
});

describe('events', () => {
  const ev = (text: string) => parseEvent(new ReplyParser().push(text)[0]!);

  it('parses STATUS_CLIENT BOOTSTRAP with a quoted summary', () => {
    const e = ev('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits"\r\n') as StatusEvent;
    expect(e).toMatchObject({ type: 'STATUS_CLIENT', severity: 'NOTICE', action: 'BOOTSTRAP' });
    expect(parseBootstrap(e)).toEqual({
      severity: 'NOTICE',
      progress: 75,
      tag: 'enough_dirinfo',
      summary: 'Loaded enough directory info to build circuits',
    });
  });

  it('parses a WARN bootstrap problem with its warning', () => {
    const e = ev(
      '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Connection refused \\"now\\"" REASON=CONNECTREFUSED COUNT=1 RECOMMENDATION=ignore HOSTID="A1B2" HOSTADDR="127.0.0.1:1"\r\n',
    ) as StatusEvent;
    expect(e.args.HOSTADDR).toBe('127.0.0.1:1');
    expect(parseBootstrap(e)).toMatchObject({ severity: 'WARN', progress: 5, warning: 'Connection refused "now"' });
  });

  it('reads GETINFO status/bootstrap-phase (where granax failed)', () => {
    expect(parseBootstrap('NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"')).toEqual({
      severity: 'NOTICE',
      progress: 100,
      tag: 'done',
      summary: 'Done',
    });
    expect(parseBootstrap('NOTICE CIRCUIT_ESTABLISHED')).toBeUndefined();
  });

  it('parses HS_DESC events', () => {
    const addr = 'a'.repeat(56);
    const up = ev(`650 HS_DESC UPLOADED ${addr} UNKNOWN $0123456789ABCDEF0123456789ABCDEF01234567~relay1\r\n`) as HsDescEvent;
    expect(up).toMatchObject({ type: 'HS_DESC', action: 'UPLOADED', address: addr, authType: 'UNKNOWN', hsDir: '$0123456789ABCDEF0123456789ABCDEF01234567~relay1' });
    const upload = ev(`650 HS_DESC UPLOAD ${addr} UNKNOWN $01~r1 Ynl0ZXM HSDIR_INDEX=00ff\r\n`) as HsDescEvent;
    expect(upload).toMatchObject({ action: 'UPLOAD', descriptorId: 'Ynl0ZXM', hsDirIndex: '00ff' });
    const failed = ev(`650 HS_DESC FAILED ${addr} NO_AUTH $01~r1 Ynl0ZXM REASON=UPLOAD_REJECTED\r\n`) as HsDescEvent;
    expect(failed).toMatchObject({ action: 'FAILED', reason: 'UPLOAD_REJECTED' });
  });

  it('parses CONF_CHANGED (set and reset) and SIGNAL', () => {
    expect(ev('650-CONF_CHANGED\r\n650-Nickname=foo bar\r\n650-ContactInfo\r\n650 OK\r\n')).toMatchObject({
      type: 'CONF_CHANGED',
      changes: [
        { key: 'Nickname', value: 'foo bar' },
        { key: 'ContactInfo', value: null },
      ],
    });
    expect(ev('650 SIGNAL RELOAD\r\n')).toMatchObject({ type: 'SIGNAL', signal: 'RELOAD' });
  });
});
