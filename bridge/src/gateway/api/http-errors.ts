import type { NextFunction, Request, Response } from 'express';
import { ZodError, type ZodType } from 'zod';
import { isPaymentError } from '../../payments/errors.js';

/** Parses input with zod; a bad input becomes a 400 naming the field, never a crash. */
export function parse<T>(schema: ZodType<T>, value: unknown): T {
  return schema.parse(value);
}

/** The last express handler: every error becomes JSON with a code and a sentence. */
export function errorHandler(log: (msg: string) => void) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof ZodError) {
      const issue = err.issues[0]!;
      res.status(400).json({ error: 'bad_request', message: `${issue.path.join('.') || 'body'}: ${issue.message}` });
      return;
    }
    if (isPaymentError(err)) {
      if (err.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(Math.ceil(err.retryAfterSeconds)));
      res.status(err.httpStatus).json(err.toJSON());
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      res.status(413).json({ error: 'too_large', message: 'the request body is too large' });
      return;
    }
    if (e.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'bad_request', message: 'the request body is not valid JSON' });
      return;
    }
    log(`API error: ${e.message ?? String(err)}`);
    res.status(500).json({ error: 'internal', message: 'something went wrong on the bridge; it is logged' });
  };
}
