import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A self-signed P-256 certificate for `names` (valid from now for `days`), made with openssl. */
export async function makeCert(names: string[], days = 30): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'torplus-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    const san = `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`;
    await run('openssl', ['req', '-x509', '-key', key, '-subj', `/CN=${names[0]}`, '-addext', san, '-days', String(days), '-out', cert]);
    return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
