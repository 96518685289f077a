// /torplus/payment/1.0.0: how a node that serves blocks asks a peer to pay, and gets paid.
//
//   server → peer   {"type":"request","request":{…}}            the payment request, as the API shows it
//   peer → server   {"type":"pay","xdr":"…"}                     a signed Stellar transaction paying it
//              or   {"type":"decline","reason":"…"}               (the peer stays throttled)
//   server → peer   {"type":"receipt","transactionHash":"…","amountStroops":"…","creditBytes":N}
//              or   {"type":"refused","code":"…","message":"…"}  (after a "pay" only)
//
// Each message is JSON, varint length-prefixed, at most `maxMessageBytes`; every step has a deadline.
// The protocol has streams of its own, so the bitswap throttle (bitswap-meter.ts) never touches it: a
// throttled peer can always be asked, and can always pay.
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import { z } from 'zod';

export const PAYMENT_PROTOCOL = '/torplus/payment/1.0.0';
const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;
const DEFAULT_ANSWER_TIMEOUT_MS = 60_000;
const DEFAULT_SUBMIT_TIMEOUT_MS = 60_000;

const text = (max: number) => z.string().min(1).max(max);
const RequestMessage = z.object({ type: z.literal('request'), request: z.record(z.string(), z.unknown()) });
const AnswerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pay'), xdr: text(8192) }),
  z.object({ type: z.literal('decline'), reason: text(1000) }),
]);
const OutcomeMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('receipt'),
    transactionHash: z.string().regex(/^[0-9a-f]{64}$/i),
    amountStroops: z.string().regex(/^[0-9]{1,20}$/),
    creditBytes: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('refused'), code: text(100), message: text(1000) }),
]);

/** What the paying side answers a request with. `settled` is told how it ended (always, once). */
export type PaymentAnswer = { xdr: string; settled?: (s: PaymentSettlement) => void } | { decline: string };

/** The end of a payment, as the paying side learns it. */
export type PaymentSettlement =
  | { paid: true; transactionHash: string; amountStroops: bigint; creditBytes: number }
  | { paid: false; reason: string };

/** The end of an offer, as the serving side sees it. */
export type OfferOutcome =
  | { status: 'paid'; transactionHash: string; amountStroops: bigint }
  | { status: 'declined'; reason: string }
  | { status: 'failed'; reason: string };

/** What the serving side's submit (PaymentsService.submitXdr) returns. */
export interface SubmittedPayment {
  transactionHash: string;
  amount: bigint;
  creditBytes: number;
}

export interface PaymentProtocolOptions {
  /**
   * The paying side: answers a peer's payment request (unvalidated JSON: validate it). Without it,
   * every request is declined: this node does not pay peers.
   */
  onRequest?: (peer: string, request: Record<string, unknown>, signal: AbortSignal) => Promise<PaymentAnswer>;
  maxMessageBytes?: number;
  /** How long the paying side has to answer. Default 60 s. */
  answerTimeoutMs?: number;
  /** How long the serving side may take to submit a payment and answer. Default 60 s. */
  submitTimeoutMs?: number;
  onError?: (err: Error) => void;
  /** Aborts the registration. */
  signal?: AbortSignal;
}

export interface PaymentProtocol {
  /**
   * Sends `request` (PaymentsService.requestJson) to `peer`; if it answers with a transaction, hands it
   * to `submit` and tells the peer the outcome. Never throws: the outcome says what happened.
   */
  offer(
    peer: PeerId | string,
    request: Record<string, unknown>,
    submit: (xdr: string, signal: AbortSignal) => Promise<SubmittedPayment>,
    options?: { signal?: AbortSignal },
  ): Promise<OfferOutcome>;
  /** Unregisters the handler. */
  stop(): Promise<void>;
}

/** Registers the protocol's handler (the paying side) and returns the serving side's `offer`. */
export async function paymentProtocol(libp2p: Libp2p, opts: PaymentProtocolOptions = {}): Promise<PaymentProtocol> {
  const maxDataLength = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const answerMs = opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
  const submitMs = opts.submitTimeoutMs ?? DEFAULT_SUBMIT_TIMEOUT_MS;

  await libp2p.handle(
    PAYMENT_PROTOCOL,
    async (stream, connection) => {
      const peer = connection.remotePeer.toString();
      const signal = AbortSignal.timeout(answerMs + submitMs + 5_000);
      let answer: PaymentAnswer | undefined;
      let settled = false;
      const settle = (s: PaymentSettlement) => {
        if (settled || !answer || !('xdr' in answer)) return;
        settled = true;
        answer.settled?.(s);
      };
      try {
        const lp = lpStream(stream, { maxDataLength });
        const msg = parse(RequestMessage, await lp.read({ signal }), 'payment request');
        answer = opts.onRequest
          ? await opts.onRequest(peer, msg.request, AbortSignal.any([signal, AbortSignal.timeout(answerMs)]))
          : { decline: 'this node does not pay peers (it has no payer: no Stellar seed configured)' };
        if ('decline' in answer) {
          await lp.write(json({ type: 'decline', reason: answer.decline.slice(0, 1000) }), { signal });
          await stream.close({ signal });
          return;
        }
        await lp.write(json({ type: 'pay', xdr: answer.xdr }), { signal });
        const outcome = parse(OutcomeMessage, await lp.read({ signal }), 'payment outcome');
        settle(
          outcome.type === 'receipt'
            ? { paid: true, transactionHash: outcome.transactionHash, amountStroops: BigInt(outcome.amountStroops), creditBytes: outcome.creditBytes }
            : { paid: false, reason: `${outcome.code}: ${outcome.message}` },
        );
        await stream.close({ signal });
      } catch (err) {
        settle({ paid: false, reason: `no outcome from the peer: ${messageOf(err)}` });
        stream.abort(err as Error);
        opts.onError?.(new Error(`payment request from ${peer}: ${messageOf(err)}`, { cause: err }));
      }
    },
    { maxInboundStreams: 4, maxOutboundStreams: 4, ...(opts.signal ? { signal: opts.signal } : {}) },
  );

  const offer: PaymentProtocol['offer'] = async (peer, request, submit, options = {}) => {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer;
    const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(answerMs + submitMs)]) : AbortSignal.timeout(answerMs + submitMs);
    let stream: Stream;
    try {
      stream = await libp2p.dialProtocol(id, PAYMENT_PROTOCOL, { signal });
    } catch (err) {
      return { status: 'failed', reason: `could not open ${PAYMENT_PROTOCOL} to ${id} (${messageOf(err)}); the peer cannot be asked to pay and stays throttled` };
    }
    try {
      const lp = lpStream(stream, { maxDataLength });
      await lp.write(json({ type: 'request', request }), { signal });
      const answer = parse(AnswerMessage, await lp.read({ signal: AbortSignal.any([signal, AbortSignal.timeout(answerMs)]) }), 'answer');
      if (answer.type === 'decline') {
        await stream.close({ signal });
        return { status: 'declined', reason: answer.reason };
      }
      let outcome: OfferOutcome;
      try {
        const paid = await submit(answer.xdr, AbortSignal.any([signal, AbortSignal.timeout(submitMs)]));
        await lp.write(json({ type: 'receipt', transactionHash: paid.transactionHash, amountStroops: paid.amount.toString(), creditBytes: paid.creditBytes }), { signal });
        outcome = { status: 'paid', transactionHash: paid.transactionHash, amountStroops: paid.amount };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const message = messageOf(err);
        await lp.write(json({ type: 'refused', code: typeof code === 'string' ? code : 'refused', message: message.slice(0, 1000) }), { signal }).catch(() => {});
        outcome = { status: 'failed', reason: `the peer's payment was refused: ${message}` };
      }
      await stream.close({ signal });
      return outcome;
    } catch (err) {
      stream.abort(err as Error);
      return { status: 'failed', reason: `payment exchange with ${id} broke off: ${messageOf(err)}` };
    }
  };

  return { offer, stop: () => libp2p.unhandle(PAYMENT_PROTOCOL) };
}

function messageOf(err: unknown): string {
  return (err instanceof Error && err.message) || String(err);
}

function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}

function parse<T>(schema: z.ZodType<T>, data: { subarray(): Uint8Array }, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data.subarray()));
  } catch {
    throw new Error(`the ${what} is not JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new Error(`the ${what} is malformed: ${r.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ')}`);
  return r.data;
}
