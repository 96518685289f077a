// Horizon's JSON shapes, as @stellar/stellar-sdk reads them: resources (root, account, transaction,
// operation, ledger, fee stats) and problems (RFC 7807, with Horizon's type URLs).
import { fromStroops } from './amount.js';
import type { ResultCodes } from './codes.js';
import type { Account, LedgerRow, OpRow, TxRow } from './store.js';

export const PROTOCOL_VERSION = 22;
export const HORIZON_VERSION = 'torplus-local-ledger-1.0';
export const BASE_RESERVE_STROOPS = 5_000_000;

/** Unix seconds → Horizon's RFC 3339 (no fractional seconds). */
export const isoTime = (s: number): string => new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const link = (href: string, templated = false) => (templated ? { href, templated: true } : { href });
/** The paged history links of an account or a ledger at `self`: its transactions, operations, payments, effects. */
const historyLinks = (self: string) => ({
  transactions: link(`${self}/transactions{?cursor,limit,order}`, true),
  operations: link(`${self}/operations{?cursor,limit,order}`, true),
  payments: link(`${self}/payments{?cursor,limit,order}`, true),
  effects: link(`${self}/effects{?cursor,limit,order}`, true),
});

export function rootJson(base: string, passphrase: string, latest: LedgerRow) {
  return {
    _links: {
      account: link(`${base}/accounts/{account_id}`, true),
      accounts: link(`${base}/accounts{?signer,sponsor,asset,liquidity_pool,cursor,limit,order}`, true),
      fee_stats: link(`${base}/fee_stats`),
      friendbot: link(`${base}/friendbot{?addr}`, true),
      ledger: link(`${base}/ledgers/{sequence}`, true),
      ledgers: link(`${base}/ledgers{?cursor,limit,order}`, true),
      operation: link(`${base}/operations/{id}`, true),
      operations: link(`${base}/operations{?cursor,limit,order,include_failed}`, true),
      payments: link(`${base}/payments{?cursor,limit,order,include_failed}`, true),
      self: link(`${base}/`),
      transaction: link(`${base}/transactions/{hash}`, true),
      transactions: link(`${base}/transactions{?cursor,limit,order}`, true),
    },
    horizon_version: HORIZON_VERSION,
    core_version: HORIZON_VERSION,
    ingest_latest_ledger: latest.sequence,
    history_latest_ledger: latest.sequence,
    history_latest_ledger_closed_at: isoTime(latest.closedAt),
    history_elder_ledger: 1,
    core_latest_ledger: latest.sequence,
    network_passphrase: passphrase,
    current_protocol_version: PROTOCOL_VERSION,
    supported_protocol_version: PROTOCOL_VERSION,
    core_supported_protocol_version: PROTOCOL_VERSION,
  };
}

export function accountJson(base: string, a: Account) {
  const self = `${base}/accounts/${a.id}`;
  return {
    _links: {
      self: link(self),
      ...historyLinks(self),
      offers: link(`${self}/offers{?cursor,limit,order}`, true),
      trades: link(`${self}/trades{?cursor,limit,order}`, true),
      // The SDK fills `data_attr` only when this link exists; its SEP-29 check needs it.
      data: link(`${self}/data/{key}`, true),
    },
    id: a.id,
    account_id: a.id,
    sequence: a.seq.toString(),
    ...(a.seqLedger > 0 ? { sequence_ledger: a.seqLedger, sequence_time: String(a.seqTime) } : {}),
    subentry_count: a.subentries,
    last_modified_ledger: a.lastModifiedLedger,
    last_modified_time: isoTime(a.lastModifiedTime),
    thresholds: { low_threshold: a.thresholds.low, med_threshold: a.thresholds.med, high_threshold: a.thresholds.high },
    flags: { auth_required: false, auth_revocable: false, auth_immutable: false, auth_clawback_enabled: false },
    balances: [
      {
        balance: fromStroops(a.balance),
        buying_liabilities: '0.0000000',
        selling_liabilities: '0.0000000',
        asset_type: 'native',
      },
    ],
    signers: [{ weight: a.masterWeight, key: a.id, type: 'ed25519_public_key' }],
    data: {},
    num_sponsoring: 0,
    num_sponsored: 0,
    paging_token: a.id,
  };
}

/** `asHash`: the hash it was asked by (a fee bump's inner hash shows the inner transaction, as Horizon). */
export function transactionJson(base: string, t: TxRow, asHash = t.hash) {
  const self = `${base}/transactions/${asHash}`;
  const token = t.id.toString();
  const memo =
    t.memoType === 'none' ? {} : { memo: t.memo, ...(t.memoBytes !== null ? { memo_bytes: t.memoBytes } : {}) };
  const feeBump =
    t.innerHash !== null
      ? {
          fee_bump_transaction: { hash: t.hash, signatures: t.signatures },
          inner_transaction: { hash: t.innerHash, signatures: t.innerSignatures ?? [], max_fee: String(t.innerMaxFee) },
        }
      : {};
  const signatures = t.innerHash !== null && asHash === t.innerHash ? (t.innerSignatures ?? []) : t.signatures;
  return {
    _links: {
      self: link(self),
      account: link(`${base}/accounts/${t.sourceAccount}`),
      ledger: link(`${base}/ledgers/${t.ledger}`),
      operations: link(`${self}/operations{?cursor,limit,order}`, true),
      effects: link(`${self}/effects{?cursor,limit,order}`, true),
      precedes: link(`${base}/transactions?order=asc&cursor=${token}`),
      succeeds: link(`${base}/transactions?order=desc&cursor=${token}`),
      transaction: link(self),
    },
    id: asHash,
    paging_token: token,
    successful: t.successful,
    hash: asHash,
    ledger: t.ledger,
    created_at: isoTime(t.createdAt),
    source_account: t.sourceAccount,
    source_account_sequence: t.sourceAccountSequence.toString(),
    fee_account: t.feeAccount,
    fee_charged: t.feeCharged.toString(),
    max_fee: t.maxFee.toString(),
    operation_count: t.operationCount,
    envelope_xdr: t.envelopeXdr,
    result_xdr: t.resultXdr,
    memo_type: t.memoType,
    ...memo,
    signatures,
    ...(t.validAfter !== null ? { valid_after: isoTime(t.validAfter) } : {}),
    ...(t.validBefore !== null ? { valid_before: isoTime(t.validBefore) } : {}),
    ...(t.validAfter !== null
      ? { preconditions: { timebounds: { min_time: String(t.validAfter), max_time: String(t.validBefore ?? 0) } } }
      : {}),
    ...feeBump,
  };
}

export function operationJson(base: string, o: OpRow) {
  const id = o.id.toString();
  const self = `${base}/operations/${id}`;
  return {
    _links: {
      self: link(self),
      transaction: link(`${base}/transactions/${o.txHash}`),
      effects: link(`${self}/effects`),
      succeeds: link(`${base}/effects?order=desc&cursor=${id}`),
      precedes: link(`${base}/effects?order=asc&cursor=${id}`),
    },
    id,
    paging_token: id,
    transaction_successful: o.successful,
    source_account: o.sourceAccount,
    type: o.type,
    type_i: o.typeI,
    created_at: isoTime(o.createdAt),
    transaction_hash: o.txHash,
    ...o.details,
  };
}

export function ledgerJson(base: string, l: LedgerRow) {
  const self = `${base}/ledgers/${l.sequence}`;
  return {
    _links: {
      self: link(self),
      ...historyLinks(self),
    },
    id: l.hash,
    paging_token: (BigInt(l.sequence) << 32n).toString(),
    hash: l.hash,
    ...(l.sequence > 1 ? { prev_hash: l.prevHash } : {}),
    sequence: l.sequence,
    successful_transaction_count: l.successfulTxCount,
    failed_transaction_count: l.failedTxCount,
    operation_count: l.operationCount,
    tx_set_operation_count: l.txSetOperationCount,
    closed_at: isoTime(l.closedAt),
    total_coins: fromStroops(l.totalCoins),
    fee_pool: fromStroops(l.feePool),
    base_fee_in_stroops: 100,
    base_reserve_in_stroops: BASE_RESERVE_STROOPS,
    max_tx_set_size: 1000,
    protocol_version: PROTOCOL_VERSION,
  };
}

/** Fee stats of a ledger that is never congested: everything is the base fee. */
export function feeStatsJson(latest: LedgerRow) {
  const flat = (v: string) => ({
    max: v,
    min: v,
    mode: v,
    p10: v,
    p20: v,
    p30: v,
    p40: v,
    p50: v,
    p60: v,
    p70: v,
    p80: v,
    p90: v,
    p95: v,
    p99: v,
  });
  return {
    last_ledger: String(latest.sequence),
    last_ledger_base_fee: '100',
    ledger_capacity_usage: '0.00',
    fee_charged: flat('100'),
    max_fee: flat('100'),
  };
}

// --- problems ------------------------------------------------------------------------------------
const PROBLEM = 'https://stellar.org/horizon-errors/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  extras?: Record<string, unknown>;
}

export const problems = {
  notFound: (): Problem => ({
    type: `${PROBLEM}not_found`,
    title: 'Resource Missing',
    status: 404,
    detail:
      'The resource at the url requested was not found.  This usually occurs for one of two reasons:  The url requested is not valid, or no data in our database could be found with the parameters provided.',
  }),
  badRequest: (detail: string, invalidField?: string): Problem => ({
    type: `${PROBLEM}bad_request`,
    title: 'Bad Request',
    status: 400,
    detail,
    ...(invalidField ? { extras: { invalid_field: invalidField, reason: detail } } : {}),
  }),
  transactionFailed: (envelopeXdr: string, resultXdr: string, codes: ResultCodes): Problem => ({
    type: `${PROBLEM}transaction_failed`,
    title: 'Transaction Failed',
    status: 400,
    detail:
      'The transaction failed when submitted to the stellar network. The `extras.result_codes` field on this response contains further details.  Descriptions of each code can be found at: https://developers.stellar.org/docs/data/horizon/api-reference/errors/result-codes/transactions',
    extras: { envelope_xdr: envelopeXdr, result_codes: codes, result_xdr: resultXdr },
  }),
  transactionMalformed: (envelopeXdr: string, detail: string): Problem => ({
    type: `${PROBLEM}transaction_malformed`,
    title: 'Transaction Malformed',
    status: 400,
    detail: `Horizon could not decode the transaction envelope in this request. A transaction should be an XDR TransactionEnvelope struct encoded using base64.  The envelope read from this request is echoed in the \`extras.envelope_xdr\` field of this response for your convenience. (${detail})`,
    extras: { envelope_xdr: envelopeXdr },
  }),
  notAcceptable: (): Problem => ({
    type: `${PROBLEM}not_acceptable`,
    title: 'An acceptable response content-type could not be provided for this request',
    status: 406,
    detail: 'This endpoint streams only operations, payments, transactions and ledgers.',
  }),
  serverError: (): Problem => ({
    type: `${PROBLEM}server_error`,
    title: 'Internal Server Error',
    status: 500,
    detail: 'An error occurred while processing this request.',
  }),
};
