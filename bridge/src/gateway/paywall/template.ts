// The page around the pay page's content: the bridge's own, or a publisher's (PAYWALL_TEMPLATE), so
// the pay page can carry the site's look. Erasable TypeScript only: the proxy workers load this as is.

/** Every placeholder a template may use. The values are HTML already (escaped where they are text). */
export interface TemplateValues {
  /** The page's language tag, for <html lang>. */
  lang: string;
  /** ltr or rtl, for <html dir>. */
  dir: string;
  title: string;
  /** Required: the <head> content (charset, viewport, title, refresh, the page's <style>). */
  head: string;
  /** Required: the payment panel (and its script). */
  body: string;
  /** The CSP nonce: a template's own <style> must carry nonce="{{nonce}}" to apply. */
  nonce: string;
  /** The site's name as the visitor reached it. */
  site: string;
}

export const PLACEHOLDERS: readonly (keyof TemplateValues)[] = ['lang', 'dir', 'title', 'head', 'body', 'nonce', 'site'];
export const REQUIRED_PLACEHOLDERS: readonly (keyof TemplateValues)[] = ['head', 'body'];

export interface PayTemplate {
  render(values: TemplateValues): string;
}

/**
 * A template from its text. Throws an Error naming what is wrong: a required placeholder missing, an
 * unknown one (a typo would otherwise show up on every pay page).
 */
export function parseTemplate(text: string): PayTemplate {
  // Split once: rendering is then a join, with no second pass over values (a value is never re-read
  // as a placeholder).
  const parts = text.split(/\{\{\s*([a-z]+)\s*\}\}/);
  const names = parts.filter((_, i) => i % 2 === 1);
  for (const name of names) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new Error(`unknown placeholder {{${name}}}; the placeholders are ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`);
    }
  }
  for (const name of REQUIRED_PLACEHOLDERS) {
    if (!names.includes(name)) throw new Error(`the placeholder {{${name}}} is missing (required: ${REQUIRED_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`);
  }
  return {
    render(values) {
      let out = '';
      for (let i = 0; i < parts.length; i++) out += i % 2 === 0 ? parts[i] : values[parts[i] as keyof TemplateValues];
      return out;
    },
  };
}

export const DEFAULT_TEMPLATE: PayTemplate = parseTemplate(`<!doctype html>
<html lang="{{lang}}" dir="{{dir}}"><head>
{{head}}
</head><body>
{{body}}
</body></html>`);
