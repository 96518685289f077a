// Payments the bridge saw for a request and did not credit, so that the visitor's pay page can say what
// arrived ("received 0.05 XLM, 0.1 XLM asked") instead of waiting forever. Kept in the payments database
// (table request_notes), one note per request and transaction: the stream replaying a record adds none.
import { Operation, type Transaction } from '@stellar/stellar-sdk';
import { formatXlm, parseXlm } from '../config/amount.js';
import type { PaymentError } from './errors.js';
import type { PaymentStore } from './store.js';
import type { PaymentNote, PaymentRequest } from './types.js';
import { baseAccount } from './verify.js';

/** Notes kept per request at most: a visitor who pays short fifty times needs no fifty lines. */
const MAX_PER_REQUEST = 5;

export class RequestNotes {
  private readonly insert;
  private readonly select;

  constructor(store: PaymentStore) {
    const db = store.sqlite;
    this.insert = db.prepare(`INSERT INTO request_notes (request_id, transaction_hash, note, created_at)
      SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM request_notes WHERE request_id = ?) < ${MAX_PER_REQUEST}
      ON CONFLICT (request_id, transaction_hash) DO NOTHING`);
    this.select = db.prepare('SELECT note FROM request_notes WHERE request_id = ? ORDER BY created_at, transaction_hash');
  }

  add(requestId: string, transactionHash: string, note: PaymentNote, now: number): void {
    this.insert.run(requestId, transactionHash, JSON.stringify(note), now, requestId);
  }

  of(requestId: string): PaymentNote[] {
    const out: PaymentNote[] = [];
    for (const row of this.select.all(requestId) as Array<{ note: string }>) {
      try {
        out.push(JSON.parse(row.note) as PaymentNote);
      } catch {
        // A row we did not write: skip it rather than break the page.
      }
    }
    return out;
  }
}

/**
 * The note for a payment that `err` refused for `request`, or undefined when the refusal says nothing the
 * visitor can act on (a failed transaction, a replay…). Looks only at operations paying `destination`.
 */
export function noteFor(err: PaymentError, tx: Transaction, request: PaymentRequest, destination: string): PaymentNote | undefined {
  const toUs = tx.operations.filter((op): op is Operation.Payment => op.type === 'payment' && baseAccount(op.destination) === destination);
  const native = toUs.filter((op) => op.asset.isNative());
  const largest = native.reduce<bigint | undefined>((best, op) => {
    const a = parseXlm(op.amount);
    return a !== undefined && (best === undefined || a > best) ? a : best;
  }, undefined);
  const received = largest === undefined ? undefined : formatXlm(largest);
  switch (err.code) {
    case 'wrong_amount':
      return received === undefined ? undefined : { kind: 'short', received, asked: formatXlm(request.amount) };
    case 'wrong_asset': {
      const op = toUs[0];
      return op ? { kind: 'asset', received: op.amount, asset: op.asset.getCode() } : undefined;
    }
    case 'expired_request':
      return received === undefined ? undefined : { kind: 'expired', received };
    case 'wrong_memo': {
      if (received === undefined) return undefined;
      const m = tx.memo;
      const memo = m.type === 'none' || m.value === null ? '(none)'
        : m.value instanceof Uint8Array ? Buffer.from(m.value).toString(m.type === 'hash' || m.type === 'return' ? 'hex' : 'utf8') : String(m.value);
      return { kind: 'memo', received, memo: memo.slice(0, 64) };
    }
    default:
      return undefined;
  }
}
