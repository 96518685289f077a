import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** Questions on a terminal, or lines from a pipe (scripted setups and tests). */
export class Prompt {
  private readonly lines: AsyncIterator<string> | undefined;

  constructor(
    private readonly input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => void },
    private readonly output: Writable,
  ) {
    if (!input.isTTY) this.lines = createInterface({ input, terminal: false })[Symbol.asyncIterator]();
  }

  async ask(question: string, fallback?: string): Promise<string> {
    this.output.write(`${question}${fallback ? ` [${fallback}]` : ''}: `);
    const answer = (await this.readLine(false)).trim();
    return answer === '' && fallback !== undefined ? fallback : answer;
  }

  /** Reads a secret without echoing it (on a terminal); nothing of it is ever written out. */
  async secret(question: string): Promise<string> {
    this.output.write(`${question} (not shown): `);
    const answer = (await this.readLine(true)).trim();
    this.output.write('\n');
    return answer;
  }

  private async readLine(hidden: boolean): Promise<string> {
    if (this.lines) {
      const next = await this.lines.next();
      if (!hidden) this.output.write('\n');
      return next.done ? '' : next.value;
    }
    // A terminal: raw mode, so the characters are not echoed; Enter ends, Ctrl-C aborts.
    return new Promise((resolve, reject) => {
      let text = '';
      const input = this.input;
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done(() => resolve(text));
          if (ch === '\u0003') return done(() => reject(new Error('interrupted')));
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else {
            text += ch;
            if (!hidden) this.output.write(ch);
          }
        }
      };
      const done = (fn: () => void) => {
        input.off('data', onData);
        input.setRawMode?.(false);
        input.pause();
        if (!hidden) this.output.write('\n');
        fn();
      };
      input.setRawMode?.(true);
      input.resume();
      input.on('data', onData);
    });
  }
}
