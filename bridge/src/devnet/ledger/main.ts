#!/usr/bin/env node
// `npm run ledger -- --port 8000 --data .ledger`: the local ledger as a process, until SIGTERM/SIGINT.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_PASSPHRASE, startLedger } from './ledger.js';

const USAGE = `Usage: npm run ledger -- [--port P] [--data DIR] [--host H] [--passphrase TEXT]

  --port        TCP port (default 8000; 0 = any free port)
  --data        directory of the SQLite database (created 0700); without it the ledger lives in memory
  --host        address to listen on (default 127.0.0.1)
  --passphrase  network passphrase (default: the one stored in --data, else "${DEFAULT_PASSPHRASE}")`;

const Args = z.object({
  port: z.coerce
    .number({ error: 'expected an integer from 0 to 65535' })
    .int({ error: 'expected an integer from 0 to 65535' })
    .min(0, { error: 'expected an integer from 0 to 65535' })
    .max(65535, { error: 'expected an integer from 0 to 65535' })
    .default(8000),
  data: z.string().trim().min(1, { error: 'expected a directory' }).optional(),
  host: z.union([z.ipv4(), z.ipv6(), z.literal('localhost')], { error: 'expected an IP address' }).default('127.0.0.1'),
  passphrase: z.string().min(1, { error: 'expected a non-empty network passphrase' }).optional(),
});

function fail(message: string, code: number): number {
  process.stderr.write(`ledger: ${message}\n`);
  return code;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        data: { type: 'string' },
        host: { type: 'string' },
        passphrase: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return fail((e as Error).message.split('\n')[0]!, 2);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const parsed = Args.safeParse({ ...values, port: values.port === '' ? 'x' : values.port });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return fail(`--${issue.path.join('.')}: ${issue.message}`, 2);
  }
  const args = parsed.data;
  const dataDir = args.data === undefined ? undefined : resolve(args.data);

  let ledger;
  try {
    ledger = await startLedger({ port: args.port, host: args.host, dataDir, networkPassphrase: args.passphrase });
  } catch (e) {
    return fail((e as Error).message, 1);
  }
  process.stdout.write(`ledger data: ${dataDir ?? 'in memory (lost on exit; use --data DIR to keep it)'}\n`);
  process.stdout.write(`ledger listening on ${ledger.url} (network passphrase "${ledger.networkPassphrase}")\n`);

  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  await ledger.close();
  process.stdout.write(`ledger stopped (${signal})\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`ledger: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
