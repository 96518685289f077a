import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

// The bridge's local control socket: `torplus-bridge fill` (and later commands) run inside the running
// bridge, which owns the IPFS store and tor, instead of opening them a second time from another process.
// A Unix socket, 0600 in DATA_DIR: whoever may read the bridge's data may drive it; nobody else.
//
// Protocol, one JSON object per line: the client sends {"command", "args"}; the bridge answers with any
// number of {"out": text} / {"err": text} / {"event": object} lines and ends with {"exit": code}.

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
  /** Structured progress, rendered by the client (only it knows whether it has a terminal). */
  event(e: Record<string, unknown>): void;
  /** Aborted when the client disconnects (Ctrl-C) or the bridge stops. */
  signal: AbortSignal;
}

export type CommandHandler = (args: Record<string, unknown>, io: CommandIo) => Promise<number>;

export const CONTROL_SOCKET = 'control.sock';

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly path: string,
    private readonly handlers: Record<string, CommandHandler>,
  ) {}

  async start(): Promise<void> {
    // A socket file left by a killed bridge would make listen fail with EADDRINUSE.
    await rm(this.path, { force: true });
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    await chmod(this.path, 0o600);
    this.server = server;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const ac = new AbortController();
    const signal = AbortSignal.any([ac.signal, this.stopping.signal]);
    socket.once('close', () => {
      this.sockets.delete(socket);
      ac.abort(new Error('the client went away'));
    });
    socket.on('error', () => {});
    const send = (o: object) => {
      if (!socket.destroyed) socket.write(JSON.stringify(o) + '\n');
    };
    const lines = createInterface({ input: socket });
    lines.on('error', () => {});
    lines.once('line', (line) => {
      lines.close();
      let req: { command?: unknown; args?: unknown };
      try {
        req = JSON.parse(line) as typeof req;
      } catch {
        send({ err: 'control: expected one JSON line {"command", "args"}' });
        send({ exit: 2 });
        socket.end();
        return;
      }
      const handler = typeof req.command === 'string' ? this.handlers[req.command] : undefined;
      if (!handler) {
        send({ err: `control: unknown command ${JSON.stringify(req.command)}; the bridge knows ${Object.keys(this.handlers).join(', ')}` });
        send({ exit: 2 });
        socket.end();
        return;
      }
      const args = req.args && typeof req.args === 'object' ? (req.args as Record<string, unknown>) : {};
      handler(args, { out: (text) => send({ out: text }), err: (text) => send({ err: text }), event: (e) => send({ event: e }), signal }).then(
        (code) => {
          send({ exit: code });
          socket.end();
        },
        (err: Error) => {
          send({ err: err.message });
          send({ exit: 1 });
          socket.end();
        },
      );
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort(new Error('the bridge is stopping'));
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.end();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 1000).unref();
    });
    await rm(this.path, { force: true });
  }
}

export interface ControlClientIo {
  out(text: string): void;
  err(text: string): void;
  event(e: Record<string, unknown>): void;
}

/** Thrown when no bridge listens on the socket: the caller may then do the work itself. */
export class BridgeNotRunningError extends Error {
  constructor(path: string) {
    super(`no bridge is running with this DATA_DIR (nothing listens on ${path})`);
    this.name = 'BridgeNotRunningError';
  }
}

/** Runs `command` in the running bridge; resolves with its exit code. */
export function callControl(path: string, command: string, args: Record<string, unknown>, io: ControlClientIo, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let exit: number | undefined;
    let connected = false;
    const onAbort = () => socket.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      connected = true;
      socket.write(JSON.stringify({ command, args }) + '\n');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) reject(new BridgeNotRunningError(path));
      else if (!connected) reject(new Error(`cannot reach the bridge on ${path}: ${err.message}`));
    });
    const lines = createInterface({ input: socket });
    // readline re-emits the socket's errors; they are handled above.
    lines.on('error', () => {});
    lines.on('line', (line) => {
      let m: { out?: string; err?: string; event?: Record<string, unknown>; exit?: number };
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        return;
      }
      if (typeof m.out === 'string') io.out(m.out);
      if (typeof m.err === 'string') io.err(m.err);
      if (m.event && typeof m.event === 'object') io.event(m.event);
      if (typeof m.exit === 'number') exit = m.exit;
    });
    socket.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      if (!connected) return;
      if (exit !== undefined) resolve(exit);
      else reject(new Error(signal?.aborted ? 'interrupted' : 'the bridge closed the control connection before the command finished (did it stop?)'));
    });
  });
}
