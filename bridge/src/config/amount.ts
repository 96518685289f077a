/** Stellar amounts: 7 decimal places. Internally always integer stroops (bigint), never floats. */
export const STROOPS_PER_XLM = 10_000_000n;

const AMOUNT = /^(0|[1-9][0-9]{0,11})(\.[0-9]{1,7})?$/;

/** "1.5" → 15000000n. Returns undefined for anything that is not a plain non-negative amount. */
export function parseXlm(text: string): bigint | undefined {
  const t = text.trim();
  if (!AMOUNT.test(t)) return undefined;
  const [whole, frac = ''] = t.split('.');
  return BigInt(whole!) * STROOPS_PER_XLM + BigInt((frac + '0000000').slice(0, 7));
}

/** 15000000n → "1.5000000", Horizon's format. */
export function formatXlm(stroops: bigint): string {
  const neg = stroops < 0n;
  const abs = neg ? -stroops : stroops;
  return `${neg ? '-' : ''}${abs / STROOPS_PER_XLM}.${(abs % STROOPS_PER_XLM).toString().padStart(7, '0')}`;
}
