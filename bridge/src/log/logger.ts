import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: string;
  /** Strings that must never reach a log line (the seed, tokens). They are replaced by [redacted]. */
  secrets?: readonly string[];
  /** JSON lines; defaults to true when stdout is not a terminal. */
  json?: boolean;
  /** Messages go here instead of stdout (tests). */
  stream?: NodeJS.WritableStream;
}

/** One logger per process, created by the supervisor and handed to each service. */
export function createLogger(opts: LoggerOptions): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length >= 8);
  const redact = winston.format((info) => {
    if (secrets.length === 0) return info;
    for (const key of Object.keys(info)) {
      const v = info[key];
      if (typeof v === 'string') info[key] = scrub(v, secrets);
    }
    return info;
  });
  const json = opts.json ?? !process.stdout.isTTY;
  const format = json
    ? winston.format.combine(redact(), winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        redact(),
        winston.format.colorize(),
        winston.format.printf(({ level, message, service, ...rest }) => {
          const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
          return `${level}${service ? ` [${String(service)}]` : ''} ${String(message)}${extra}`;
        }),
      );
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console({ stderrLevels: [] });
  return winston.createLogger({ level: opts.level, format, transports: [transport] });
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
