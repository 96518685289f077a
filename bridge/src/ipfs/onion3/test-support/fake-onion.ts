import { randomBytes } from 'node:crypto';
import { onion3AddressFromPublicKey } from '../onion3-address.js';

/** A well-formed v3 onion address (valid checksum) that no tor knows: random "public key". */
export function fakeOnion(): string {
  return onion3AddressFromPublicKey(randomBytes(32));
}
