// The narrow views one service gets of another, built by the supervisor: each service receives only
// what it needs, and none reaches into another's insides.
import type { PaymentPort } from './gateway/meter/meter.js';
import type { PaywallPayments } from './gateway/paywall/paywall-server.js';
import type { PaymentsService } from './payments/payments-service.js';

/** The meter's view of payments. */
export function meterPaymentPort(p: PaymentsService): PaymentPort {
  return {
    requestPayment: async (visitorKey, service) => p.requestPayment(visitorKey, service),
    resolveSession: (token) => (p.enabled ? p.resolveSession(token) : undefined),
    leaseCredit: (sessionId, bytes) => p.leaseCredit(sessionId, bytes),
    returnCredit: (sessionId, bytes) => void p.returnCredit(sessionId, bytes).catch(() => undefined),
  };
}

/** The pay page's view of payments: while payments are not (or no longer) running, nothing is known. */
export function paywallPaymentPort(p: PaymentsService): PaywallPayments {
  return {
    getRequest: (id) => p.getRequest(id).catch(() => undefined),
    requestJson: (r) => p.requestJson(r),
    notesOf: (id) => p.notesOf(id).catch(() => []),
    idle: () => p.idle(),
    submitXdr: (id, xdr, signal) => p.submitXdr(id, xdr, signal),
    submitHash: (id, hash, signal) => p.submitHash(id, hash, signal),
    online: () => p.health().ok,
  };
}
