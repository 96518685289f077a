// Signature checks as stellar-core does them (SignatureChecker), with node:crypto's Ed25519, which is
// about 16× faster than the SDK's Keypair.verify. A transaction's signatures are over its hash, which
// includes the network passphrase: a transaction signed for another network fails here (tx_bad_auth).
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { StrKey, type xdr } from '@stellar/stellar-sdk';
import type { Account } from './store.js';

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const KEY_CACHE_MAX = 10_000;
const keyCache = new Map<string, { raw: Buffer; key: KeyObject }>();

/** The raw key and a cached node:crypto KeyObject for a G… address. */
function publicKeyOf(address: string): { raw: Buffer; key: KeyObject } {
  let k = keyCache.get(address);
  if (!k) {
    const raw = Buffer.from(StrKey.decodeEd25519PublicKey(address));
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    k = { raw, key };
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(address, k);
  }
  return k;
}

export interface Signer {
  /** G… address of an ed25519 key. */
  key: string;
  weight: number;
}

/** The account's signers: only the master key, since the ledger has no setOptions. */
export function signersOf(a: Account): Signer[] {
  return [{ key: a.id, weight: a.masterWeight }];
}

/**
 * Checks one envelope's signatures against accounts' signers and remembers which signatures were used, so
 * that unused ones can be refused afterwards (tx_bad_auth_extra), as core does.
 */
export class SignatureChecker {
  private readonly used: boolean[];
  private readonly sigs: { hint: Buffer; signature: Buffer }[];
  /** `${index}:${address}` → verified? */
  private readonly memo = new Map<string, boolean>();

  constructor(
    private readonly hash: Buffer,
    signatures: xdr.DecoratedSignature[],
  ) {
    this.sigs = signatures.map((s) => ({ hint: Buffer.from(s.hint.value), signature: Buffer.from(s.signature.value) }));
    this.used = this.sigs.map(() => false);
  }

  private verifies(index: number, address: string): boolean {
    const memoKey = `${index}:${address}`;
    let ok = this.memo.get(memoKey);
    if (ok === undefined) {
      const sig = this.sigs[index]!;
      const { raw, key } = publicKeyOf(address);
      ok = sig.hint.equals(raw.subarray(28)) && sig.signature.length === 64 && cryptoVerify(null, this.hash, key, sig.signature);
      this.memo.set(memoKey, ok);
    }
    return ok;
  }

  /**
   * True when signatures from `signers` (each counted once, weight > 0) add up to `threshold`, and at
   * least one signed (a threshold of 0 still needs a signature, as on Stellar).
   */
  check(signers: Signer[], threshold: number): boolean {
    let total = 0;
    for (const signer of signers) {
      if (signer.weight <= 0) continue;
      for (let i = 0; i < this.sigs.length; i++) {
        if (!this.verifies(i, signer.key)) continue;
        this.used[i] = true;
        total += signer.weight;
        break;
      }
      if (total > 0 && total >= threshold) return true;
    }
    return false;
  }

  /** Did every signature serve some check? */
  allUsed(): boolean {
    return this.used.every(Boolean);
  }
}
