import { Router } from 'express';
import type { Secret } from '../../config/secret.js';
import { requireAdmin } from './admin-token.js';
import { toApiJson } from './json.js';
import { streamEvents, type PaymentsApi } from './payments-routes.js';

/** The publisher's side of the API: earnings and every payment event. Bearer token only. */
export function adminRouter(payments: Pick<PaymentsApi, 'earnings' | 'on' | 'off'>, token: Secret): Router {
  const r = Router();
  r.use(requireAdmin(token));
  r.get('/earnings', async (_req, res) => void res.json(toApiJson(await payments.earnings())));
  r.get('/events', (req, res) => streamEvents(req, res, payments, () => true));
  return r;
}
