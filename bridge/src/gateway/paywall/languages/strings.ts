// The words of the pay page, one object per language (en.ts, de.ts, …; the list is in index.ts).
// `{name}` marks a value the page fills in (escaped); nothing else in a string is interpreted, so a
// translation can never inject markup. Erasable TypeScript only: the proxy workers load this as is.

export interface PayPageStrings {
  /** The BCP 47 tag this file answers for, e.g. "de". */
  lang: string;
  /** The language's own name, e.g. "Deutsch". */
  name: string;
  /** Left-to-right or right-to-left. */
  dir: 'ltr' | 'rtl';
  title: string;
  heading: string;
  /** {amount} XLM, {mib} MiB. */
  lead: string;
  /** {rate}: e.g. "32 KiB/s". */
  slowly: string;
  scan: string;
  openWallet: string;
  manualHeading: string;
  destination: string;
  amount: string;
  memo: string;
  /** How to enter the memo: {hex} is the same memo in hexadecimal. */
  memoType: string;
  copy: string;
  copied: string;
  /** {time} UTC, {minutes}. */
  expires: string;
  expired: string;
  freshRequest: string;
  waiting: string;
  paid: string;
  checkButton: string;
  offlineLink: string;
  offlineHeading: string;
  offlineHelp: string;
  xdrLabel: string;
  hashLabel: string;
  submitButton: string;
  back: string;
  preparing: string;
  notFound: string;
  /** The visitor asked for a check and nothing has arrived yet. */
  nothingYet: string;
  /** {received} XLM, {asked} XLM. */
  noteShort: string;
  /** {received} {asset}. */
  noteAsset: string;
  /** {received} XLM. */
  noteExpired: string;
  /** {received} XLM, {memo}. */
  noteMemo: string;
  /** The bridge refused a pasted transaction: the technical reason follows. */
  refused: string;
  /** The bridge cannot reach the Stellar network right now. */
  networkDown: string;
  /** The footer: what this page is. */
  footer: string;
}

/** The text escaped, then its `{name}` placeholders filled from `values` (escaped too). */
export function fill(text: string, values: Record<string, string | number>, escape: (s: string) => string): string {
  return escape(text).replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? escape(String(values[name])) : whole));
}
