import { stat } from 'node:fs/promises';

/**
 * Warnings for TLS files that group or others may read. The key matters most (whoever reads it can
 * impersonate the site); both files are written 0600 by the bridge, so anything looser is a sign that
 * someone copied them in by hand and forgot the mode.
 */
export async function permissionWarnings(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const mode = (await stat(p)).mode & 0o777;
    if ((mode & 0o077) !== 0) out.push(`${p} is accessible by group/others (mode ${mode.toString(8).padStart(3, '0')}); run chmod 600 ${p}`);
  }
  return out;
}
