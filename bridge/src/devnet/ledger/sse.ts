// Server-sent events as Horizon streams them and the SDK's `stream()` (the `eventsource` package) expects:
//   retry: 1000            then   event: open / data: "hello"
//   id: <paging_token> / data: <record JSON>   for each record after the cursor, in order
// The response stays open (a server that ends it makes the SDK reconnect in a tight loop); a comment
// line is sent as a heartbeat. After every closed ledger each stream sends what it has not sent yet.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry } from './paging.js';

/** Records after `after`, ascending, at most `limit`. */
export type Fetch = (after: bigint, limit: number) => Entry[];

const BATCH = 200;

class SseStream {
  private closed = false;
  private waitingForDrain = false;

  constructor(
    private readonly res: ServerResponse,
    private lastToken: bigint,
    private readonly fetch: Fetch,
  ) {}

  start(): void {
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'Access-Control-Allow-Origin': '*',
      'X-Accel-Buffering': 'no',
    });
    this.res.write('retry: 1000\n\nevent: open\ndata: "hello"\n\n');
    this.pump();
  }

  /** Sends every record after the last one sent; waits for 'drain' when the socket is backed up. */
  pump(): void {
    try {
      this.pumpUnsafe();
    } catch {
      this.close(); // e.g. the database closed under a stream during shutdown
    }
  }

  private pumpUnsafe(): void {
    while (!this.closed && !this.waitingForDrain) {
      const entries = this.fetch(this.lastToken, BATCH);
      if (entries.length === 0) return;
      let chunk = '';
      for (const e of entries) {
        chunk += `id: ${e.token}\ndata: ${JSON.stringify(e.json)}\n\n`;
        this.lastToken = e.token;
      }
      if (!this.res.write(chunk)) {
        this.waitingForDrain = true;
        this.res.once('drain', () => {
          this.waitingForDrain = false;
          this.pump();
        });
        return;
      }
      if (entries.length < BATCH) return;
    }
  }

  heartbeat(): void {
    if (!this.closed && !this.waitingForDrain) this.res.write(': heartbeat\n\n');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.end();
  }

  markClosed(): void {
    this.closed = true;
  }
}

export class StreamHub {
  private readonly streams = new Set<SseStream>();
  private readonly timer: NodeJS.Timeout;

  constructor(heartbeatMs = 10_000) {
    this.timer = setInterval(() => {
      for (const s of this.streams) s.heartbeat();
    }, heartbeatMs);
    this.timer.unref();
  }

  /** Serves `res` as a stream of the records after `after`. */
  open(req: IncomingMessage, res: ServerResponse, after: bigint, fetch: Fetch): void {
    const stream = new SseStream(res, after, fetch);
    this.streams.add(stream);
    req.socket.setNoDelay(true);
    res.on('close', () => {
      stream.markClosed();
      this.streams.delete(stream);
    });
    stream.start();
  }

  /** A ledger closed: every stream sends its new records. */
  notify(): void {
    for (const s of this.streams) s.pump();
  }

  get size(): number {
    return this.streams.size;
  }

  /** Ends every stream (on shutdown). */
  close(): void {
    clearInterval(this.timer);
    for (const s of this.streams) s.close();
    this.streams.clear();
  }
}

/** The stream's starting point: Last-Event-ID (set by an EventSource reconnecting) wins over `cursor`. */
export function lastEventId(req: IncomingMessage): bigint | undefined {
  const v = req.headers['last-event-id'];
  return typeof v === 'string' && /^[0-9]{1,19}$/.test(v) ? BigInt(v) : undefined;
}
