// Which database the payments service keeps its records in: PostgreSQL when DATABASE_URL is set (several
// bridges share it), else SQLite in DATA_DIR (one bridge).
import type { PaymentsConfig } from '../../config/config.js';
import type { Logger } from '../../log/logger.js';
import type { PaymentsDatabase } from './payments-database.js';
import { PgPaymentsDatabase } from './pg-database.js';
import { SqlitePaymentsDatabase } from './sqlite-database.js';

export async function openPaymentsDatabase(c: PaymentsConfig, dataDir: string, log: Logger): Promise<PaymentsDatabase> {
  if (c.databaseUrl === undefined) return SqlitePaymentsDatabase.open(dataDir);
  try {
    return await PgPaymentsDatabase.open({
      url: c.databaseUrl.reveal(),
      onError: (err) => log.warn(`PostgreSQL: ${err.message}`, { service: 'payments' }),
    });
  } catch (err) {
    // The URL may hold a password: name the database by host only.
    throw new Error(`payments: PostgreSQL at ${hostOf(c.databaseUrl.reveal())} (DATABASE_URL): ${(err as Error).message}`);
  }
}

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(an unreadable URL)';
  }
}
