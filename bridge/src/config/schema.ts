import { z } from 'zod';

// Every setting of the bridge, read from environment variables (and `.env`). The names are fixed:
// tests, the container and the README use them. Parsed once, at the edge; the rest of the code
// receives the typed `Config` and never reads `process.env`.

const port = (fallback: number) =>
  z.coerce
    .number({ error: 'expected a TCP port number' })
    .int('expected a whole TCP port number')
    .min(0, 'expected a port from 0 to 65535')
    .max(65535, 'expected a port from 0 to 65535')
    .default(fallback);

const flag = (fallback: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
      error: 'expected true or false',
    })
    .default(fallback ? 'true' : 'false')
    .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const optionalString = z
  .string()
  .transform((v) => v.trim())
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/,
    'expected a domain name such as example.com, without scheme or path',
  );

const upstreamUrl = z
  .url({ error: 'expected an http:// URL such as http://web:80' })
  .refine((u) => /^http:\/\/[^/]+\/?$/.test(u), 'expected an http:// URL with host and port only, such as http://web:80');

export const configSchema = z.object({
  WWW_DIR: z.string().min(1).default('./www'),
  TOR_DIR: z.string().min(1).default('./tor'),
  DATA_DIR: z.string().min(1).default('./data'),
  SSL_DIR: z.string().min(1).default('./ssl_torplus'),
  HTTP_PORT: port(80),
  API_PORT: port(8000),
  LISTEN_HOST: z.string().min(1).default('0.0.0.0'),
  DOMAIN: domain.optional().or(z.literal('').transform(() => undefined)),
  UPSTREAM_URL: upstreamUrl.optional().or(z.literal('').transform(() => undefined)),
  TOR_EXTRA_CONFIG: optionalString,
  TOR_BIN: z.string().min(1).default('tor'),
  TOR_POW_DEFENSE: flag(true),
  TOR_INTRO_DOS_DEFENSE: flag(true),
  PROXY_WORKERS: z.coerce
    .number({ error: 'expected a number of worker processes' })
    .int('expected a whole number of worker processes')
    .min(0, 'expected 0 (one per core) or a positive number')
    .max(64, 'expected at most 64 worker processes')
    .default(1),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug'], { error: 'expected error, warn, info or debug' }).default('info'),
});

export type RawConfig = z.infer<typeof configSchema>;
