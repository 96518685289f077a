// The gateway Meter's view of payments (PaymentPort), for peers. One difference from the gateway's
// (ports.ts meterPaymentPort()): a peer never presents a session token, its peer ID (authenticated by
// noise) is its identity. Without a token, every new request would open a NEW session, and the Meter
// would move the peer's account to it and lose track of the old alias (a fresh free allowance). So the
// token each session was created with is kept here, in memory, and every later request of that
// session is made with it: a peer keeps one session for the life of the process.
import type { PaymentPort } from '../../gateway/meter/meter.js';
import type { PaymentsService } from '../../payments/payments-service.js';

export type PeerPaymentsApi = Pick<PaymentsService, 'requestPayment' | 'resolveSession' | 'leaseCredit' | 'returnCredit'>;

export function peerPaymentPort(payments: PeerPaymentsApi): PaymentPort {
  /** session id → its bearer token (never leaves the process). */
  const tokens = new Map<string, string>();
  return {
    requestPayment: async (visitorKey, service) => {
      const sessionId = visitorKey.startsWith('session:') ? visitorKey.slice('session:'.length) : undefined;
      const token = sessionId === undefined ? undefined : tokens.get(sessionId);
      const result = await payments.requestPayment(visitorKey, service, token);
      if (result.sessionToken) tokens.set(result.request.sessionId, result.sessionToken);
      return result.sessionToken ? { request: result.request, sessionToken: result.sessionToken } : { request: result.request };
    },
    resolveSession: (token) => payments.resolveSession(token),
    leaseCredit: (sessionId, bytes) => payments.leaseCredit(sessionId, bytes),
    returnCredit: (sessionId, bytes) => void payments.returnCredit(sessionId, bytes).catch(() => undefined),
  };
}
