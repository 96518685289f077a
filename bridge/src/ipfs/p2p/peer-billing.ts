// The serving side's glue: a peer's new payment request (PeerMeter 'request') is offered to it over
// /torplus/payment/1.0.0; a signed transaction it answers with goes to the payments service, which
// verifies, submits and credits it, and whose 'complete' event lifts the peer's throttle (PeerMeter).
import type { PaymentsService } from '../../payments/payments-service.js';
import type { PaymentComplete, PaymentRequest } from '../../payments/types.js';
import type { OfferOutcome, PaymentProtocol } from './payment-protocol.js';
import type { PeerMeter } from './peer-meter.js';

export type BillingPaymentsApi = Pick<PaymentsService, 'requestJson' | 'submitXdr' | 'on' | 'off'>;

export interface PeerBillingOptions {
  meter: PeerMeter;
  protocol: Pick<PaymentProtocol, 'offer'>;
  payments: BillingPaymentsApi;
  /** Each offer's outcome (logging). */
  onOutcome?: (peer: string, request: PaymentRequest, outcome: OfferOutcome) => void;
}

/** Starts billing; returns the stop function (it waits for offers in flight to end). */
export function billPeers(o: PeerBillingOptions): () => Promise<void> {
  const controller = new AbortController();
  const inflight = new Set<Promise<void>>();
  const onRequest = ({ peer, request }: { peer: string; request: PaymentRequest }) => {
    const p = offer(o, peer, request, controller.signal).finally(() => inflight.delete(p));
    inflight.add(p);
  };
  const onComplete = (e: PaymentComplete) => o.meter.paymentComplete(e);
  o.meter.on('request', onRequest);
  o.payments.on('complete', onComplete);
  return async () => {
    o.meter.off('request', onRequest);
    o.payments.off('complete', onComplete);
    controller.abort(new Error('billing stopped'));
    await Promise.allSettled([...inflight]);
  };
}

async function offer(o: PeerBillingOptions, peer: string, request: PaymentRequest, signal: AbortSignal): Promise<void> {
  let outcome: OfferOutcome;
  try {
    outcome = await o.protocol.offer(
      peer,
      o.payments.requestJson(request),
      async (xdr, s) => {
        const receipt = await o.payments.submitXdr(request.id, xdr, s);
        return { transactionHash: receipt.transactionHash, amount: receipt.amount, creditBytes: receipt.creditBytes };
      },
      { signal },
    );
  } catch (err) {
    outcome = { status: 'failed', reason: (err as Error).message };
  }
  o.meter.offered(peer, request.id, outcome);
  o.onOutcome?.(peer, request, outcome);
}
