// Small helpers for tests and the demo that drive a local ledger with the SDK's own calls.
import {
  Asset,
  Horizon,
  Keypair,
  Memo,
  Operation,
  TransactionBuilder,
  type Transaction,
  type TransactionSource,
} from '@stellar/stellar-sdk';
import type { LedgerHandle } from './ledger.js';
import { parseSep7Pay } from '../../payments/sep7.js';

export interface Funded {
  keypair: Keypair;
  address: string;
}

export function horizonFor(ledger: LedgerHandle): Horizon.Server {
  return new Horizon.Server(ledger.url, { allowHttp: true });
}

/** A new keypair, funded by friendbot (10,000 XLM). */
export async function fundedAccount(ledger: LedgerHandle): Promise<Funded> {
  const keypair = Keypair.random();
  await ledger.friendbot(keypair.publicKey());
  return { keypair, address: keypair.publicKey() };
}

/** A one-payment transaction (native asset) from `source`, signed by `signers` (default: none). */
export function paymentTx(
  source: TransactionSource,
  networkPassphrase: string,
  payment: { destination: string; amount: string; source?: string },
  opts: { signers?: Keypair[]; fee?: string; timebounds?: { minTime: number; maxTime: number } } = {},
): Transaction {
  const builder = new TransactionBuilder(source, {
    fee: opts.fee ?? '100',
    networkPassphrase,
    ...(opts.timebounds ? { timebounds: opts.timebounds } : {}),
  }).addOperation(Operation.payment({ ...payment, asset: Asset.native() }));
  if (!opts.timebounds) builder.setTimeout(60);
  const tx = builder.build();
  if (opts.signers?.length) tx.sign(...opts.signers);
  return tx;
}

/** The native balance of an account, as Horizon reports it ("9998.4999900"). */
export async function balanceOf(server: Horizon.Server, address: string): Promise<string> {
  const a = await server.loadAccount(address);
  const native = a.balances.find((b) => b.asset_type === 'native');
  if (!native) throw new Error(`no native balance for ${address}`);
  return native.balance;
}

/** What the SDK's error carries from a failed submission: status and result codes or problem type. */
export function submissionError(e: unknown): { status?: number; type?: string; codes?: unknown } {
  const response = (e as { response?: { status?: number; data?: { type?: string; extras?: { result_codes?: unknown } } } })
    .response;
  return { status: response?.status, type: response?.data?.type, codes: response?.data?.extras?.result_codes };
}

/**
 * Pays a SEP-7 pay URI from `payer` as a phone wallet would: a plain payment with the URI's memo, signed
 * and submitted to the ledger by the SDK (never through the bridge). Returns the transaction hash.
 */
export async function payUri(ledger: LedgerHandle, payer: Keypair, uri: string, change: { amount?: string; memoHex?: string } = {}): Promise<string> {
  const p = parseSep7Pay(uri);
  if (p.networkPassphrase !== undefined && p.networkPassphrase !== ledger.networkPassphrase) throw new Error(`the URI is for "${p.networkPassphrase}"`);
  const server = horizonFor(ledger);
  const account = await server.loadAccount(payer.publicKey());
  const memo = change.memoHex !== undefined ? Memo.hash(change.memoHex)
    : p.memo === undefined ? Memo.none()
    : p.memoType === 'MEMO_HASH' ? Memo.hash(Buffer.from(p.memo, 'base64').toString('hex'))
    : p.memoType === 'MEMO_ID' ? Memo.id(p.memo) : Memo.text(p.memo);
  const tx = new TransactionBuilder(account, { fee: '100', networkPassphrase: ledger.networkPassphrase })
    .addOperation(Operation.payment({ destination: p.destination, amount: change.amount ?? p.amount ?? '1', asset: Asset.native() }))
    .addMemo(memo)
    .setTimeout(60)
    .build();
  tx.sign(payer);
  const r = await server.submitTransaction(tx);
  return r.hash;
}
