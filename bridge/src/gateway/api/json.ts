import { formatXlm } from '../../config/amount.js';

/**
 * JSON for API answers: money is bigint stroops inside the bridge; outside it is a Horizon-style
 * XLM string (and the stroops as a string, for exact arithmetic). Dates are ISO strings.
 */
export function toApiJson(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => {
      if (typeof v === 'bigint') return formatXlm(v);
      if ((key === 'createdAt' || key === 'expiresAt') && typeof v === 'number') return new Date(v).toISOString();
      return v;
    }),
  );
}
