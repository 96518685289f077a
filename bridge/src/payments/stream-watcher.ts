// Watches the bridge account's payments on Horizon (SDK `payments().forAccount(me).cursor(saved).stream()`)
// so that a visitor who paid the SEP-7 URI from a wallet is credited without telling the bridge anything.
//
// The cursor (the last handled record's paging token) is persisted AFTER each record is handled: a crash
// replays at most the records after it, and crediting is idempotent (keyed on the operation), so a replay
// costs a lookup, never a second credit. Records are handled one at a time, in order; while Horizon does not
// answer, the same record is retried with backoff rather than skipped, so the cursor never passes a payment
// that was not looked at.
import type { Logger } from '../log/logger.js';
import { isPaymentError } from './errors.js';
import type { HorizonApi, PaymentRecord } from './horizon.js';
import type { PaymentsDatabase } from './db/payments-database.js';

const CURSOR_KEY = 'stream_cursor';

export interface StreamWatcherOptions {
  horizon: HorizonApi;
  store: PaymentsDatabase;
  /** The bridge's account. */
  account: string;
  log: Logger;
  /** Credits the payment of one transaction; throws PaymentError when it is not creditable. */
  credit: (transactionHash: string, signal: AbortSignal) => Promise<unknown>;
}

export class StreamWatcher {
  private readonly o: StreamWatcherOptions;
  private readonly stopping = new AbortController();
  private chain: Promise<void> = Promise.resolve();
  private close: () => void = () => {};
  /** The stream's last error, cleared by the next record. */
  error: string | undefined;
  records = 0;

  constructor(o: StreamWatcherOptions) {
    this.o = o;
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { store, horizon, account } = this.o;
    let cursor = await store.getValue(CURSOR_KEY);
    if (cursor === undefined) {
      // First start: payments before now belong to no request of ours; begin after the newest one.
      cursor = (await horizon.latestPaymentCursor(account, signal).catch(() => undefined)) ?? 'now';
      if (cursor !== 'now') await store.setValue(CURSOR_KEY, cursor);
    }
    this.close = horizon.streamPayments(account, cursor, {
      onRecord: (record) => {
        this.error = undefined;
        this.chain = this.chain
          .then(() => this.handle(record))
          .catch((err: Error) => void this.o.log.error(`payment stream: operation ${record.id}: ${err.message}`));
      },
      onError: (err) => {
        if (this.error === undefined) this.o.log.warn(`${err.message} (reconnecting)`);
        this.error = err.message;
      },
    });
  }

  /** Closes the stream and waits for the record in hand (its retries are cut short). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.close();
    await this.chain;
  }

  /** Resolves when every record received so far is handled. */
  async idle(): Promise<void> {
    await this.chain;
  }

  private async handle(record: PaymentRecord): Promise<void> {
    const signal = this.stopping.signal;
    if (signal.aborted) return;
    this.records++;
    if (record.type === 'payment' && record.to === this.o.account) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.o.credit(record.transactionHash, signal);
          break;
        } catch (err) {
          // The database is away (or anything else went wrong): the payment must not be skipped, so the
          // same record is tried again, later, and the cursor stays before it meanwhile.
          if (!isPaymentError(err)) {
            this.failing(record, err as Error, attempt);
            await delay(Math.min(30_000, 500 * 2 ** attempt), signal);
            if (signal.aborted) return;
            continue;
          }
          // Horizon down, or not yet showing the transaction: same record again, later.
          if (err.code === 'horizon_unavailable' || (err.code === 'unknown_transaction' && attempt < 5)) {
            await delay(Math.min(30_000, 500 * 2 ** attempt), signal);
            if (signal.aborted) return; // not handled: the cursor stays before it
            continue;
          }
          if (err.code === 'expired_request') this.o.log.warn(`payment stream: ${err.message}; refund it by hand if it was meant for a visitor`);
          else if (err.code !== 'replay' && err.code !== 'wrong_source') this.o.log.info(`payment stream: operation ${record.id} not credited: ${err.message}`);
          break;
        }
      }
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.store.setValue(CURSOR_KEY, record.pagingToken);
        this.error = undefined;
        return;
      } catch (err) {
        this.failing(record, err as Error, attempt);
        await delay(Math.min(30_000, 500 * 2 ** attempt), signal);
        if (signal.aborted) return;
      }
    }
  }

  /** Says once per record that it is held back, and why (also in /healthz). */
  private failing(record: PaymentRecord, err: Error, attempt: number): void {
    this.error = `payment stream: operation ${record.id} waits: ${err.message}`;
    if (attempt === 0) this.o.log.error(`${this.error} (retrying; nothing is skipped)`);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
