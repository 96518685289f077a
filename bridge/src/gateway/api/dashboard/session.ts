import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import type { Secret } from '../../../config/secret.js';

export const COOKIE_NAME = 'torplus_admin';
const MAX_AGE_SECONDS = 7 * 24 * 3600;

/**
 * The dashboard's login state. The cookie holds an HMAC of the admin token (keyed by the token), never
 * the token itself: it survives restarts, and changing ADMIN_TOKEN signs every browser out.
 */
export class DashboardSession {
  readonly #token: Buffer;
  readonly #cookieValue: Buffer;

  constructor(token: Secret) {
    this.#token = Buffer.from(token.reveal());
    this.#cookieValue = Buffer.from(createHmac('sha256', this.#token).update('torplus-dashboard-session-v1').digest('base64url'));
  }

  /** Is this the admin token? Constant time. */
  isToken(candidate: unknown): boolean {
    return typeof candidate === 'string' && sameBytes(Buffer.from(candidate), this.#token);
  }

  /** `Authorization: Bearer <token>` or the session cookie. */
  isAuthorised(req: Request): boolean {
    const bearer = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (bearer && this.isToken(bearer[1])) return true;
    const cookie = readCookie(req.get('cookie'), COOKIE_NAME);
    return cookie !== undefined && sameBytes(Buffer.from(cookie), this.#cookieValue);
  }

  /** The Set-Cookie header value that logs a browser in. */
  setCookie(): string {
    return `${COOKIE_NAME}=${this.#cookieValue.toString()}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${MAX_AGE_SECONDS}`;
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One cookie's value from a Cookie header (no dependency for this). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
