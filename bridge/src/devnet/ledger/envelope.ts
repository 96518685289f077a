// Decoding a submitted envelope (base64 TransactionEnvelope, v0, v1 or fee bump) with the SDK into the
// plain shape the ledger validates and applies. Muxed (M…) accounts are reduced to their G… base.
import {
  extractBaseAddress,
  FeeBumpTransaction,
  TransactionBuilder,
  type OperationRecord,
  type Transaction,
  type xdr,
} from '@stellar/stellar-sdk';
import { toStroops } from './amount.js';

export type ParsedOp =
  | { type: 'payment'; source: string; destination: string; native: boolean; amount: bigint }
  | { type: 'createAccount'; source: string; destination: string; startingBalance: bigint }
  | { type: 'bumpSequence'; source: string; bumpTo: bigint }
  | { type: 'unsupported'; source: string; sdkType: string };

export interface ParsedMemo {
  type: 'none' | 'text' | 'id' | 'hash' | 'return';
  /** Horizon's `memo`: text as UTF-8, id in decimal, hash and return in base64. */
  memo: string | null;
  /** Horizon's `memo_bytes` (text memos only), base64. */
  memoBytes: string | null;
}

export interface ParsedTx {
  hash: Buffer;
  source: string;
  seq: bigint;
  /** The maximum fee, in stroops. */
  fee: bigint;
  ops: ParsedOp[];
  signatures: xdr.DecoratedSignature[];
  memo: ParsedMemo;
  timeBounds: { minTime: bigint; maxTime: bigint } | undefined;
  ledgerBounds: { minLedger: number; maxLedger: number } | undefined;
  minSeq: bigint | undefined;
  minSeqAge: bigint | undefined;
  minSeqLedgerGap: number | undefined;
  extraSigners: xdr.SignerKey[];
}

export interface ParsedEnvelope {
  /** The envelope's hash (the outer one for a fee bump): the transaction's id on Horizon. */
  hash: Buffer;
  /** Canonical base64 of the envelope. */
  envelopeXdr: string;
  inner: ParsedTx;
  feeBump: { hash: Buffer; feeSource: string; fee: bigint; signatures: xdr.DecoratedSignature[] } | undefined;
}

export class MalformedEnvelope extends Error {}

const base = (address: string): string => (address.startsWith('M') ? extractBaseAddress(address) : address);

function parseOp(op: OperationRecord, txSource: string): ParsedOp {
  const source = base(op.source ?? txSource);
  switch (op.type) {
    case 'payment':
      return { type: 'payment', source, destination: base(op.destination), native: op.asset.isNative(), amount: toStroops(op.amount) };
    case 'createAccount':
      return { type: 'createAccount', source, destination: base(op.destination), startingBalance: toStroops(op.startingBalance) };
    case 'bumpSequence':
      return { type: 'bumpSequence', source, bumpTo: BigInt(op.bumpTo) };
    default:
      return { type: 'unsupported', source, sdkType: op.type };
  }
}

function parseMemo(tx: Transaction): ParsedMemo {
  const m = tx.memo;
  switch (m.type) {
    case 'none':
      return { type: 'none', memo: null, memoBytes: null };
    case 'id':
      return { type: 'id', memo: String(m.value), memoBytes: null };
    case 'text': {
      const v = m.value as Uint8Array | string;
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
      return { type: 'text', memo: bytes.toString('utf8'), memoBytes: bytes.toString('base64') };
    }
    case 'hash':
    case 'return':
      return { type: m.type, memo: Buffer.from(m.value as Uint8Array).toString('base64'), memoBytes: null };
    default:
      throw new MalformedEnvelope(`unknown memo type ${String(m.type)}`);
  }
}

function parseTx(tx: Transaction): ParsedTx {
  const source = base(tx.source);
  const tb = tx.timeBounds;
  const lb = tx.ledgerBounds;
  return {
    hash: Buffer.from(tx.hash()),
    source,
    seq: BigInt(tx.sequence),
    fee: BigInt(tx.fee),
    ops: tx.operations.map((op) => parseOp(op, source)),
    signatures: tx.signatures,
    memo: parseMemo(tx),
    timeBounds: tb ? { minTime: BigInt(tb.minTime), maxTime: BigInt(tb.maxTime) } : undefined,
    ledgerBounds: lb ? { minLedger: lb.minLedger, maxLedger: lb.maxLedger } : undefined,
    minSeq: tx.minAccountSequence === undefined ? undefined : BigInt(tx.minAccountSequence),
    minSeqAge: tx.minAccountSequenceAge,
    minSeqLedgerGap: tx.minAccountSequenceLedgerGap,
    extraSigners: tx.extraSigners ?? [],
  };
}

/** Decodes the envelope for `networkPassphrase` (the hashes depend on it). Throws MalformedEnvelope. */
export function parseEnvelope(envelopeXdr: string, networkPassphrase: string): ParsedEnvelope {
  let parsed: Transaction | FeeBumpTransaction;
  try {
    parsed = TransactionBuilder.fromXDR(envelopeXdr, networkPassphrase);
  } catch (e) {
    throw new MalformedEnvelope(e instanceof Error ? e.message : String(e));
  }
  try {
    if (parsed instanceof FeeBumpTransaction) {
      const hash = Buffer.from(parsed.hash());
      return {
        hash,
        envelopeXdr: parsed.toXDR(),
        inner: parseTx(parsed.innerTransaction),
        feeBump: { hash, feeSource: base(parsed.feeSource), fee: BigInt(parsed.fee), signatures: parsed.signatures },
      };
    }
    const inner = parseTx(parsed);
    return { hash: inner.hash, envelopeXdr: parsed.toXDR(), inner, feeBump: undefined };
  } catch (e) {
    if (e instanceof MalformedEnvelope) throw e;
    throw new MalformedEnvelope(e instanceof Error ? e.message : String(e));
  }
}
