// Peers over libp2p, metered and paid like the gateway's visitors: bitswap bytes counted per peer, a
// payment request sent past the free allowance over /torplus/payment/1.0.0, the throttle after grace,
// lifted at once by the payment; and the paying side, within FILL_MAX_SPEND. See each file for its part.
import type { Libp2p } from '@libp2p/interface';
import type { Logger } from '../../log/logger.js';
import { meterBitswap } from './bitswap-meter.js';
import { billPeers, type BillingPaymentsApi } from './peer-billing.js';
import { PeerMeter } from './peer-meter.js';
import { peerPaymentPort, type PeerPaymentsApi } from './peer-payment-port.js';
import { PeerPayer, type PeerPayerOptions } from './peer-payer.js';
import { peerStats, type PeerRecord } from './peer-stats.js';
import { paymentProtocol, type PaymentProtocol, type PaymentProtocolOptions } from './payment-protocol.js';

export { BITSWAP_PREFIX, meterBitswap, type MeterBitswapOptions, type PeerGate } from './bitswap-meter.js';
export { splitBitswapFrame, type BitswapParts } from './bitswap-frames.js';
export { billPeers, type BillingPaymentsApi, type PeerBillingOptions } from './peer-billing.js';
export { PeerMeter, type PeerAccounting, type PeerMeterOptions } from './peer-meter.js';
export { peerPaymentPort, type PeerPaymentsApi } from './peer-payment-port.js';
export { PeerPayer, type PayerPeerRecord, type PeerPayerOptions } from './peer-payer.js';
export { peerStats, type PeerRecord, type PeerStatsSources } from './peer-stats.js';
export {
  PAYMENT_PROTOCOL,
  paymentProtocol,
  type OfferOutcome,
  type PaymentAnswer,
  type PaymentProtocol,
  type PaymentProtocolOptions,
  type PaymentSettlement,
  type SubmittedPayment,
} from './payment-protocol.js';

export interface PeerPaymentsOptions {
  /** The Helia node's libp2p, started. */
  libp2p: Libp2p;
  /**
   * The serving side: the STARTED payments service. Undefined or not enabled (no seed): peers are
   * counted, never asked to pay nor throttled.
   */
  payments: (PeerPaymentsApi & BillingPaymentsApi & { readonly enabled: boolean }) | undefined;
  /** IPFS_FREE_BYTES, GRACE_SECONDS, IPFS_THROTTLE_BYTES_PER_SEC. */
  freeBytes: number;
  graceSeconds: number;
  throttleBytesPerSec: number;
  /** A declined or failed payment request is offered again after this long (default 60 s). */
  reofferMs?: number;
  /**
   * The paying side. Undefined: every request from a peer is declined. `mayPay` defaults to: only
   * peers that have sent this node bitswap data (a stranger cannot ask to be paid).
   */
  payer?: Omit<PeerPayerOptions, 'mayPay'> & { mayPay?: PeerPayerOptions['mayPay'] };
  protocol?: Omit<PaymentProtocolOptions, 'onRequest' | 'signal'>;
  log?: Logger;
  signal?: AbortSignal;
}

export interface PeerPayments {
  meter: PeerMeter;
  protocol: PaymentProtocol;
  payer: PeerPayer | undefined;
  /** The admin view: one record per peer. */
  stats(): PeerRecord[];
  /** Uninstalls everything; offers in flight end first. */
  stop(): Promise<void>;
}

export async function startPeerPayments(o: PeerPaymentsOptions): Promise<PeerPayments> {
  o.signal?.throwIfAborted();
  const log = o.log?.child({ service: 'ipfs-peers' });
  const payments = o.payments?.enabled ? o.payments : undefined;
  const meter = new PeerMeter({
    freeBytes: o.freeBytes,
    graceSeconds: o.graceSeconds,
    throttleBytesPerSec: o.throttleBytesPerSec,
    payments: payments ? peerPaymentPort(payments) : undefined,
    ...(o.reofferMs !== undefined ? { reofferMs: o.reofferMs } : {}),
    onError: (err) => log?.warn(`peer payment request failed: ${err.message}`),
  });
  const payer = o.payer
    ? new PeerPayer({
        ...o.payer,
        mayPay: o.payer.mayPay ?? ((peer) => (meter.receivedFrom(peer) > 0 ? true : 'this node has fetched nothing from that peer')),
      })
    : undefined;
  const uninstall = meterBitswap(o.libp2p, meter, { onWarning: (m) => log?.warn(m) });
  let protocol: PaymentProtocol;
  try {
    protocol = await paymentProtocol(o.libp2p, {
      ...o.protocol,
      ...(payer ? { onRequest: (peer, request, signal) => payer.answer(peer, request, signal) } : {}),
      onError: o.protocol?.onError ?? ((err) => log?.debug(err.message)),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    await uninstall();
    meter.close();
    throw err;
  }
  const stopBilling = payments
    ? billPeers({
        meter,
        protocol,
        payments,
        onOutcome: (peer, request, outcome) =>
          log?.info(`payment request ${request.id} to peer ${peer}: ${outcome.status}${'reason' in outcome ? ` (${outcome.reason})` : ''}`),
      })
    : async () => {};
  return {
    meter,
    protocol,
    payer,
    stats: () => peerStats({ libp2p: o.libp2p, meter, payer }),
    stop: async () => {
      await stopBilling();
      await protocol.stop().catch(() => {}); // libp2p may be stopped already
      await uninstall();
      meter.close();
    },
  };
}
