import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { Secret } from '../../config/secret.js';

/**
 * The admin token: ADMIN_TOKEN when set, else one generated once and kept 0600 in DATA_DIR.
 * `created` tells the caller to print it, once.
 */
export function loadAdminToken(configured: Secret | undefined, dataDir: string): { token: Secret; created: boolean; file?: string } {
  if (configured) return { token: configured, created: false };
  const file = join(dataDir, 'admin-token');
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    return { token: new Secret(readFileSync(file, 'utf8').trim()), created: false, file };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  return { token: new Secret(token), created: true, file };
}

/** `Authorization: Bearer <token>`, compared in constant time. */
export function requireAdmin(token: Secret) {
  const want = Buffer.from(token.reveal());
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    const got = Buffer.from(m?.[1] ?? '');
    if (got.length === want.length && timingSafeEqual(got, want)) return next();
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'unauthorized', message: 'this needs the admin token: Authorization: Bearer <ADMIN_TOKEN>' });
  };
}
