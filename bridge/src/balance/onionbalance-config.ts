// onionbalance's config.yaml: one service (the master key) and its instances (the backends' onions).
// onionbalance reads it only when it starts, so a new backend set means a new file and a restart.
import { rename, writeFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { normalizeOnion } from '../tor/onionbalance-instance.js';

/**
 * The YAML text. Addresses are base32 (nothing to quote); the key path is quoted when it needs it. onionbalance
 * refuses an empty instance list ("No backend instances are set"), so this does too.
 */
export function renderOnionbalanceConfig(keyFile: string, backends: readonly string[]): string {
  // Absolute: onionbalance resolves a relative key path against the config's folder, and the key may live
  // in the bridge's hidden_service folder rather than beside the config.
  if (!isAbsolute(keyFile)) throw new TypeError(`onionbalance config: the key path must be absolute, got ${JSON.stringify(keyFile)}`);
  if (backends.length === 0) throw new TypeError('onionbalance config: at least one backend is needed');
  return [
    '# Written by torplus-bridge balance whenever the live backends change; edits here are lost.',
    'services:',
    `- key: ${yamlString(keyFile)}`,
    '  instances:',
    ...backends.map((b) => `  - address: ${normalizeOnion(b).replace(/\.onion$/, '')}`),
    '',
  ].join('\n');
}

/**
 * A path as a YAML scalar: plain when it holds only characters YAML never reads specially, else double-quoted
 * (a JSON string is a valid YAML double-quoted scalar, escapes included).
 */
function yamlString(v: string): string {
  if (/[\0\r\n]/.test(v)) throw new TypeError(`onionbalance config: a path with a control character: ${JSON.stringify(v)}`);
  return /^[A-Za-z0-9_./@+=~-]+$/.test(v) ? v : JSON.stringify(v);
}

/** Writes config.yaml whole (a temporary file renamed into place), 0600: it names the key's path. */
export async function writeOnionbalanceConfig(file: string, keyFile: string, backends: readonly string[]): Promise<void> {
  const text = renderOnionbalanceConfig(keyFile, backends);
  await writeFile(`${file}.tmp`, text, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
