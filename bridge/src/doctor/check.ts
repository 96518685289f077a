/** One line of `torplus-bridge doctor`: what was checked, and the fix when it failed. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** Worth a look, but not a failure (an optional record, say): shown with '!'. */
  warn?: boolean;
  detail: string;
  /** What to do about it; for failures and warnings. */
  fix?: string;
}

export const pass = (name: string, detail: string): CheckResult => ({ name, ok: true, detail });
export const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, ok: false, detail, fix });
export const warn = (name: string, detail: string, fix: string): CheckResult => ({ name, ok: true, warn: true, detail, fix });

/** The checklist, ✓ or ✗ a line, each ✗ followed by its fix. */
export function formatChecks(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${!r.ok ? '✗' : r.warn ? '!' : '✓'} ${r.name}: ${r.detail}`);
    if ((!r.ok || r.warn) && r.fix) lines.push(`    fix: ${r.fix}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? `\nall ${results.length} checks passed` : `\n${failed} of ${results.length} checks failed`);
  return lines.join('\n');
}
