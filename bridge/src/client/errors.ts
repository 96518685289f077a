// The client's errors, each with the exit code the CLI gives it. Messages are built from public values only
// (URLs, amounts, accounts, codes): never from the seed.
import { formatXlm } from '../config/amount.js';

export const EXIT = {
  ok: 0,
  /** Anything else: network, the bridge refused a payment, the ledger… */
  failure: 1,
  /** Bad arguments or environment. */
  usage: 2,
  /** The next payment would exceed --max-spend; the partial download is kept. */
  budget: 3,
  /** The site answered an HTTP error status (404, 500…). */
  http: 4,
  /** Interrupted (SIGINT/SIGTERM). */
  interrupted: 130,
} as const;

export class ClientError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT.failure, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.exitCode = exitCode;
  }
}

export class UsageError extends ClientError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

/** The next payment would take the total past --max-spend. */
export class BudgetExhaustedError extends ClientError {
  readonly neededStroops: bigint;
  readonly leftStroops: bigint;
  /** Set by the fetcher: where the partial download was kept, and how much of it there is. */
  partialPath: string | undefined;
  partialBytes = 0;

  constructor(neededStroops: bigint, leftStroops: bigint, maxStroops: bigint) {
    super(
      `payment required: the bridge asks ${formatXlm(neededStroops)} XLM, but only ${formatXlm(leftStroops)} XLM of --max-spend ` +
        `${formatXlm(maxStroops)} XLM is left`,
      EXIT.budget,
    );
    this.name = 'BudgetExhaustedError';
    this.neededStroops = neededStroops;
    this.leftStroops = leftStroops;
  }
}

export class HttpStatusError extends ClientError {
  readonly status: number;

  constructor(status: number, url: string) {
    super(`${url}: HTTP ${status}`, EXIT.http);
    this.name = 'HttpStatusError';
    this.status = status;
  }
}

/** A payment could not be made (refused by the bridge, the ledger, a wrong network…). */
export class PaymentFailedError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT.failure, options);
    this.name = 'PaymentFailedError';
  }
}

/** The request asked for is no longer payable (paid meanwhile, expired): ask the site again. */
export class StaleRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleRequestError';
  }
}
