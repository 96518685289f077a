// Parser for tor's control-protocol replies (control-spec §2.3, §4.1), kept apart from the socket
// code so it can be tested on recorded bytes. We write our own instead of using granax, whose
// GETINFO parser splits on every `=` and garbles values like status/bootstrap-phase.

/** One line of a reply. `data` is set for `XYZ+` lines: the dot-unstuffed block that followed. */
export interface ReplyLine {
  code: number;
  /** '-' more lines follow, '+' a data block follows, ' ' last line. */
  sep: '-' | '+' | ' ';
  text: string;
  data?: string;
}

/** A complete reply (or asynchronous event when code is 650). `code` is the final line's code. */
export interface Reply {
  code: number;
  lines: ReplyLine[];
}

/** A byte stream tor sent us that does not follow the protocol; the connection must be dropped. */
export class TorProtocolError extends Error {
  override name = 'TorProtocolError';
}

/**
 * Incremental parser: feed it text as it arrives, get complete messages back in order.
 * Asynchronous events (6xx) are buffered separately from ordinary replies, so even if tor wrote
 * an event between the lines of a multi-line reply, neither would be corrupted.
 */
export class ReplyParser {
  private pending = '';
  private readonly partial = new Map<'reply' | 'event', ReplyLine[]>();
  /** Set while reading a data block: the line that opened it and the block's lines so far. */
  private block: { line: ReplyLine; kind: 'reply' | 'event'; body: string[] } | undefined;

  /** Feeds decoded text (any chunking); returns the messages completed by it. */
  push(chunk: string): Reply[] {
    this.pending += chunk;
    const out: Reply[] = [];
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      // Tor ends lines with CRLF; accept a bare LF too.
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    // A reply line has no legitimate reason to be this long without a newline.
    if (this.pending.length > 1 << 20) throw new TorProtocolError('control line longer than 1 MiB');
    return out;
  }

  private line(raw: string): Reply | undefined {
    if (this.block) {
      if (raw === '.') {
        this.block.line.data = this.block.body.join('\n');
        this.block = undefined;
      } else {
        // Dot-stuffing: a data line starting with '.' was sent with one more '.' in front.
        this.block.body.push(raw.startsWith('.') ? raw.slice(1) : raw);
      }
      return undefined;
    }
    const m = /^(\d{3})([ +-])(.*)$/s.exec(raw);
    if (!m) {
      // Be lenient with a bare "XYZ" (an empty last line): read it as "XYZ ".
      if (/^\d{3}$/.test(raw)) return this.line(raw + ' ');
      throw new TorProtocolError(`malformed control line: ${JSON.stringify(raw.slice(0, 200))}`);
    }
    const code = Number(m[1]);
    const sep = m[2] as ReplyLine['sep'];
    const text = m[3] ?? '';
    const kind = code >= 600 && code < 700 ? 'event' : 'reply';
    const lines = this.partial.get(kind) ?? [];
    const rl: ReplyLine = { code, sep, text };
    lines.push(rl);
    if (sep === '+') {
      this.partial.set(kind, lines);
      this.block = { line: rl, kind, body: [] };
      return undefined;
    }
    if (sep === '-') {
      this.partial.set(kind, lines);
      return undefined;
    }
    this.partial.delete(kind);
    return { code, lines };
  }
}

/** The text of a reply as one string, for error messages. */
export function replyText(r: Reply): string {
  return r.lines.map((l) => l.text).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Tokens: positional words, quoted strings and KEY=VALUE pairs, as in events and PROTOCOLINFO.

export interface Token {
  key?: string;
  value: string;
}

/**
 * Splits `NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"` into tokens.
 * Quoted values may contain spaces, '=' and backslash escapes (\" \\ \n \t \r, octal, \x hex).
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    if (i >= n) break;
    if (text[i] === '"') {
      const q = readQuoted(text, i);
      out.push({ value: q.value });
      i = q.end;
      continue;
    }
    let j = i;
    while (j < n && text[j] !== ' ' && text[j] !== '=') j++;
    if (text[j] === '=' && j > i) {
      const key = text.slice(i, j);
      j++;
      if (text[j] === '"') {
        const q = readQuoted(text, j);
        out.push({ key, value: q.value });
        i = q.end;
      } else {
        let k = j;
        while (k < n && text[k] !== ' ') k++;
        out.push({ key, value: text.slice(j, k) });
        i = k;
      }
      continue;
    }
    while (j < n && text[j] !== ' ') j++;
    out.push({ value: text.slice(i, j) });
    i = j;
  }
  return out;
}

/** KEY=VALUE tokens as a record, positional tokens as a list. */
export function splitTokens(tokens: Token[]): { positional: string[]; kv: Record<string, string> } {
  const positional: string[] = [];
  const kv: Record<string, string> = {};
  for (const t of tokens) {
    if (t.key === undefined) positional.push(t.value);
    else kv[t.key] = t.value;
  }
  return { positional, kv };
}

/** Reads the quoted string starting at text[start] === '"'; returns its value and the index after it. */
export function readQuoted(text: string, start: number): { value: string; end: number } {
  // Escapes stand for bytes (tor escapes non-ASCII bytes in octal), so decode UTF-8 at the end.
  const bytes: number[] = [];
  const pushText = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') return { value: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (c !== '\\') {
      pushText(c);
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === undefined) break;
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, '"': 34, '\\': 92, "'": 39 };
    if (e in simple) {
      bytes.push(simple[e]!);
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1))![0];
      bytes.push(parseInt(oct, 8) & 0xff);
      i += 1 + oct.length;
    } else if (e === 'x' && /^[0-9a-fA-F]{2}/.test(text.slice(i + 2))) {
      bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
      i += 4;
    } else {
      // Unknown escape: keep the character, as tor's own unescaper does.
      pushText(e);
      i += 2;
    }
  }
  throw new TorProtocolError(`unterminated quoted string: ${JSON.stringify(text.slice(start, start + 200))}`);
}

/** Quotes a value for a command (SETCONF, AUTHENTICATE): backslash and quote escaped. */
export function quote(value: string): string {
  if (/[\r\n\0]/.test(value)) throw new TypeError('control values may not contain CR, LF or NUL');
  return '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}
