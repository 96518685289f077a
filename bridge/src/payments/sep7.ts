// Reading a SEP-7 `web+stellar:pay?…` URI as a wallet does: the tests and the demo pay what the pay page
// shows exactly this way, so the page's URI is checked against the standard, not against our writer.
import { StrKey } from '@stellar/stellar-sdk';
import { parseXlm } from '../config/amount.js';

export interface Sep7Pay {
  destination: string;
  /** Decimal XLM as written in the URI. */
  amount: string | undefined;
  assetCode: string | undefined;
  memo: string | undefined;
  memoType: 'MEMO_TEXT' | 'MEMO_ID' | 'MEMO_HASH' | 'MEMO_RETURN' | undefined;
  networkPassphrase: string | undefined;
  msg: string | undefined;
  originDomain: string | undefined;
  callback: string | undefined;
}

const MEMO_TYPES = new Set(['MEMO_TEXT', 'MEMO_ID', 'MEMO_HASH', 'MEMO_RETURN']);

/** Parses a SEP-7 pay URI; throws an Error saying what is wrong. */
export function parseSep7Pay(uri: string): Sep7Pay {
  const prefix = 'web+stellar:pay?';
  if (typeof uri !== 'string' || !uri.startsWith(prefix)) throw new Error('not a SEP-7 pay URI (web+stellar:pay?…)');
  if (uri.length > 8192) throw new Error('the URI is too long');
  const params = new Map<string, string>();
  for (const pair of uri.slice(prefix.length).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`a parameter without a value: ${pair.slice(0, 40)}`);
    const key = pair.slice(0, eq);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw new Error(`the value of ${key} is not valid percent-encoding`);
    }
    if (params.has(key)) throw new Error(`the parameter ${key} appears twice`);
    params.set(key, value);
  }
  const destination = params.get('destination');
  if (!destination || !(StrKey.isValidEd25519PublicKey(destination) || StrKey.isValidMed25519PublicKey(destination))) {
    throw new Error('destination must be a valid Stellar account (G… or M…)');
  }
  const amount = params.get('amount');
  if (amount !== undefined && (parseXlm(amount) === undefined || parseXlm(amount) === 0n)) throw new Error(`amount ${amount} is not a positive amount`);
  const memoType = params.get('memo_type');
  if (memoType !== undefined && !MEMO_TYPES.has(memoType)) throw new Error(`memo_type ${memoType} is not one of ${[...MEMO_TYPES].join(', ')}`);
  const memo = params.get('memo');
  if (memo !== undefined) {
    const type = memoType ?? 'MEMO_TEXT';
    if ((type === 'MEMO_HASH' || type === 'MEMO_RETURN') && Buffer.from(memo, 'base64').length !== 32) throw new Error(`a ${type} memo must be 32 bytes in base64`);
    if (type === 'MEMO_ID' && !/^\d{1,20}$/.test(memo)) throw new Error('a MEMO_ID memo must be a number');
    if (type === 'MEMO_TEXT' && Buffer.byteLength(memo) > 28) throw new Error('a MEMO_TEXT memo is at most 28 bytes');
  }
  const msg = params.get('msg');
  if (msg !== undefined && msg.length > 300) throw new Error('msg is at most 300 characters');
  return {
    destination, amount, assetCode: params.get('asset_code'), memo, memoType: memoType as Sep7Pay['memoType'],
    networkPassphrase: params.get('network_passphrase'), msg, originDomain: params.get('origin_domain'), callback: params.get('callback'),
  };
}
