// One outbound bitswap stream, counted and, while its peer is throttled, paced.
//
// Unthrottled, every `send` is counted and passed straight through. Throttled, nothing more goes on the
// stream bitswap opened: it is closed at once (empty, so the remote's 10 s receive timeout never fires on
// it), the held messages are split per block, and each block waits for the peer's token bucket and then
// goes at full speed on a fresh bitswap stream of its own. Bitswap sees `send` return false and waits in
// `onDrain` until every held block is out: its block sends to a peer carry no deadline of their own (the
// ledger's queue signal, not messageSendTimeout), so a long wait is safe. Messages without blocks (this
// node's wantlist, presences) are never held: they go with messageSendTimeout's 10 s deadline, and are
// small. A payment lifts the throttle at once: the wait in progress is cut short.
import type { Stream } from '@libp2p/interface';
import type { Uint8ArrayList } from 'uint8arraylist';
import { splitBitswapFrame } from './bitswap-frames.js';

/** What a bitswap stream needs from the meter, per peer (the peer's id as a string). */
export interface PeerGate {
  /** Bytes went out to `peer` on bitswap. */
  sent(peer: string, bytes: number, remoteAddr?: string): void;
  /** Bytes came in from `peer` on bitswap. */
  received(peer: string, bytes: number, remoteAddr?: string): void;
  throttled(peer: string): boolean;
  /** Bytes `peer` may still receive before it must pay (Infinity when it never must). */
  left(peer: string): number;
  /** Takes `bytes` from the peer's bucket: the ms to wait before sending them (0 when not throttled). */
  reserve(peer: string, bytes: number): number;
  /** Calls `wake` once when the peer's throttle lifts; returns the unregister function. */
  onRelease(peer: string, wake: () => void): () => void;
}

export interface PacedStreamContext {
  peer: string;
  remoteAddr: string | undefined;
  gate: PeerGate;
  /** Opens another stream of the same protocol to the peer (the unwrapped dialProtocol). */
  dial: (signal: AbortSignal) => Promise<Stream>;
}

/** Wraps `stream` in place (its own send/onDrain/close/abort) and returns it. */
export function pacedStream(stream: Stream, ctx: PacedStreamContext): Stream {
  const send = stream.send.bind(stream);
  const onDrain = stream.onDrain.bind(stream);
  const close = stream.close.bind(stream);
  const abort = stream.abort.bind(stream);
  const controller = new AbortController();
  let pump: Promise<void> | undefined;
  let pacing = false;
  let firstClose: Promise<void> | undefined;

  const hold = (frame: Uint8Array): void => {
    pacing = true;
    // Nothing more goes on this stream: close it now (it flushes what was already sent), so the remote
    // is not left waiting on an idle stream.
    firstClose ??= close().catch(() => {});
    const previous = pump ?? Promise.resolve();
    pump = previous.then(() => sendHeld(frame, ctx, controller.signal));
    pump.catch(() => {}); // observed by onDrain/close; never an unhandled rejection
  };

  const pass = (data: Uint8Array | Uint8ArrayList): boolean => {
    const ok = send(data);
    ctx.gate.sent(ctx.peer, data.byteLength, ctx.remoteAddr);
    return ok;
  };
  stream.send = (data) => {
    if (pacing) {
      hold(flat(data));
      return false;
    }
    const throttled = ctx.gate.throttled(ctx.peer);
    // A message that crosses the peer's allowance goes block by block too, so that the throttle, once
    // it starts, applies to the rest of it: bitswap may answer a whole DAG layer in one message.
    if (!throttled && data.byteLength <= ctx.gate.left(ctx.peer)) return pass(data);
    // A message without blocks (our wantlist, presences) is never held.
    const frame = flat(data);
    if (splitBitswapFrame(frame)?.blocks.length === 0) return pass(frame);
    hold(frame);
    return false;
  };
  stream.onDrain = async (options) => {
    if (!pump) return onDrain(options);
    return withSignal(pump, options?.signal, controller);
  };
  stream.close = async (options) => {
    if (!pump) return close(options);
    await withSignal(pump, options?.signal, controller);
    await firstClose;
  };
  stream.abort = (err) => {
    controller.abort(err);
    abort(err);
  };
  return stream;
}

function flat(data: Uint8Array | Uint8ArrayList): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/** Sends one held message: its control part at once, then each block when the bucket allows. */
async function sendHeld(frame: Uint8Array, ctx: PacedStreamContext, signal: AbortSignal): Promise<void> {
  const parts = splitBitswapFrame(frame);
  const paced = parts ? parts.blocks : [frame];
  if (parts?.control) await sendOnNewStream(parts.control, ctx, signal);
  for (const part of paced) {
    await waitTurn(ctx, ctx.gate.reserve(ctx.peer, part.length), signal);
    await sendOnNewStream(part, ctx, signal);
  }
}

async function sendOnNewStream(bytes: Uint8Array, ctx: PacedStreamContext, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const s = await ctx.dial(signal);
  try {
    if (!s.send(bytes)) await s.onDrain({ signal });
    ctx.gate.sent(ctx.peer, bytes.length, ctx.remoteAddr);
    await s.close({ signal });
  } catch (err) {
    s.abort(err as Error);
    throw err;
  }
}

/** Waits `ms`, or less if the peer's throttle lifts meanwhile; rejects when `signal` aborts. */
function waitTurn(ctx: PacedStreamContext, ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      unwake();
      signal.removeEventListener('abort', aborted);
    };
    const go = (): void => {
      done();
      resolve();
    };
    const aborted = (): void => {
      done();
      reject(signal.reason as Error);
    };
    const timer = setTimeout(go, ms);
    const unwake = ctx.gate.onRelease(ctx.peer, go);
    signal.addEventListener('abort', aborted, { once: true });
  });
}

/** Waits for `p`; when the caller's signal aborts first, stops the pacing and rejects. */
async function withSignal(p: Promise<void>, signal: AbortSignal | undefined, controller: AbortController): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      controller.abort(signal.reason);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}
