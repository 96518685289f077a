// The pay page's languages. Adding one: copy en.ts to <tag>.ts, translate its strings, and add it to
// LANGUAGES below. Erasable TypeScript only: the proxy workers load this as is.
import { strings as de } from './de.js';
import { strings as en } from './en.js';
import { strings as es } from './es.js';
import { strings as ru } from './ru.js';
import type { PayPageStrings } from './strings.js';

export type { PayPageStrings } from './strings.js';

/** English first: it answers when nothing else matches. */
export const LANGUAGES: readonly PayPageStrings[] = [en, de, es, ru];

/**
 * The language an Accept-Language header asks for, by its q-values: "de-CH, de;q=0.9, en;q=0.5" → de.
 * A tag matches by its primary subtag. Bounded work on hostile input: at most 20 entries are read.
 */
export function pickLanguage(acceptLanguage: string | undefined, languages: readonly PayPageStrings[] = LANGUAGES): PayPageStrings {
  const fallback = languages[0]!;
  if (!acceptLanguage) return fallback;
  let best: PayPageStrings | undefined;
  let bestQ = 0;
  for (const part of acceptLanguage.slice(0, 500).split(',').slice(0, 20)) {
    const [tag = '', ...params] = part.trim().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    const primary = tag.trim().toLowerCase().split('-')[0];
    const match = languages.find((l) => l.lang === primary);
    if (match && q > bestQ) {
      best = match;
      bestQ = q;
    }
  }
  return best ?? fallback;
}
