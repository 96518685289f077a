// Stellar amounts for the local ledger: always integer stroops (bigint) inside, Horizon's
// seven-decimal strings ("1.5000000") outside. No floating point anywhere.

export const STROOPS_PER_XLM = 10_000_000n;
/** Stellar's base reserve (0.5 XLM). An account must keep (2 + subentries) × this. */
export const BASE_RESERVE = 5_000_000n;
/** The base fee per operation, in stroops (what a non-congested Stellar ledger charges). */
export const BASE_FEE = 100n;
/** All lumens in existence: 100 billion XLM, held by the root account at genesis. */
export const TOTAL_COINS = 100_000_000_000n * STROOPS_PER_XLM;

const AMOUNT = /^-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,7})?$/;

/** "1.5" or "1.5000000" → 15000000n. Throws on anything else (the SDK always gives 7 decimals). */
export function toStroops(text: string): bigint {
  if (!AMOUNT.test(text)) throw new RangeError(`not a Stellar amount: ${JSON.stringify(text)}`);
  const neg = text.startsWith('-');
  const [whole, frac = ''] = (neg ? text.slice(1) : text).split('.');
  const v = BigInt(whole!) * STROOPS_PER_XLM + BigInt(frac.padEnd(7, '0'));
  return neg ? -v : v;
}

/** 15000000n → "1.5000000", Horizon's format. */
export function fromStroops(stroops: bigint): string {
  const neg = stroops < 0n;
  const abs = neg ? -stroops : stroops;
  return `${neg ? '-' : ''}${abs / STROOPS_PER_XLM}.${(abs % STROOPS_PER_XLM).toString().padStart(7, '0')}`;
}

/** The least balance an account with `subentries` subentries must keep. */
export function minBalance(subentries: number): bigint {
  return (2n + BigInt(subentries)) * BASE_RESERVE;
}
