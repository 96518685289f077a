#!/usr/bin/env node
// bench/databases: `npm run bench:databases`. Payment crediting per second on PostgreSQL (a throw-away
// cluster on this machine) against SQLite in the same run, one credit at a time and 8 at once (several
// bridges, or a burst of wallet payments). A credit is the whole transaction the payments service makes:
// receipt under its unique key, request paid, session credited. Also a lease (the meter's per-MiB draw on a
// paid session). Nothing is asserted: these machines are noisy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'bridge', 'dist', p));
const { startPostgres } = await dist('devnet/postgres.js');
const { PgPaymentsDatabase } = await dist('payments/db/pg-database.js');
const { SqlitePaymentsDatabase } = await dist('payments/db/sqlite-database.js');

const N = Number(process.env.BENCH_CREDITS ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'bench-db-'));
const postgres = await startPostgres();

async function seed(db, n) {
  const requests = [];
  for (let i = 0; i < n; i++) {
    const id = `req_${i}`;
    await db.insertSession({ id: `ses_${i}`, tokenHash: Buffer.from(String(i).padStart(32, '0')), visitorKey: `circuit:${i}`, createdAt: 1 });
    const r = { id, service: 'tor', sessionId: `ses_${i}`, amount: 1_000_000n, asset: 'native', destination: 'GB', memoHash: String(i).padStart(64, '0'), creditBytes: 10 * 1048576, createdAt: 1, expiresAt: 9e12, status: 'open' };
    await db.insertRequest(r, `circuit:${i}`);
    requests.push(r);
  }
  return requests;
}

async function measure(label, open) {
  const db = await open();
  const requests = await seed(db, N);
  const credit = (r, i) => db.credit({ request: r, operationId: `op-${label}-${i}`, transactionHash: 'ab'.repeat(32), from: 'GP', amount: 1_000_000n, creditBytes: r.creditBytes, via: 'stream', createdAt: 2 });
  let t = performance.now();
  for (let i = 0; i < N / 2; i++) await credit(requests[i], i);
  const serial = (N / 2) / ((performance.now() - t) / 1000);
  t = performance.now();
  let next = N / 2;
  await Promise.all(Array.from({ length: 8 }, async () => { while (next < N) { const i = next++; await credit(requests[i], i); } }));
  const parallel = (N / 2) / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < N; i++) await db.leaseCredit(requests[i].sessionId, 1048576);
  const leases = N / ((performance.now() - t) / 1000);
  await db.close();
  return { serial, parallel, leases };
}

const sqlite = await measure('sqlite', async () => SqlitePaymentsDatabase.open(join(dir, 'sqlite')));
const pg = await measure('pg', async () => PgPaymentsDatabase.open({ url: await postgres.createDatabase('bench') }));
const f = (x) => Math.round(x).toLocaleString('en-US');
console.log(`payment credits per second (${N / 2} each way), and leases per second (${N})`);
console.log(`                 one at a time   8 at once   leases`);
console.log(`  SQLite         ${f(sqlite.serial).padStart(13)}   ${f(sqlite.parallel).padStart(9)}   ${f(sqlite.leases).padStart(6)}`);
console.log(`  PostgreSQL     ${f(pg.serial).padStart(13)}   ${f(pg.parallel).padStart(9)}   ${f(pg.leases).padStart(6)}`);
console.log(`  ratio PG/SQLite ${(pg.serial / sqlite.serial).toFixed(2).padStart(12)}   ${(pg.parallel / sqlite.parallel).toFixed(2).padStart(9)}   ${(pg.leases / sqlite.leases).toFixed(2).padStart(6)}`);
await postgres.destroy();
rmSync(dir, { recursive: true, force: true });
