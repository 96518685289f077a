// Tor v3 onion addresses and `/onion3/<address>:<port>` multiaddrs.
// An address is base32(PUBKEY[32] | CHECKSUM[2] | VERSION[1]), 56 characters, where
// CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[0..2] and VERSION = 3 (rend-spec-v3).
import { createHash } from 'node:crypto';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';

/** The multicodec of `/onion3`. */
export const ONION3_CODE = 445;
const P2P_CODE = 421;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A parsed `/onion3/<address>:<port>[/p2p/<id>]` multiaddr. */
export interface Onion3Target {
  /** The 56-character address, lower case, without `.onion`. */
  address: string;
  /** The host name to hand to tor's SOCKS port: `<address>.onion`. */
  host: string;
  /** The onion service's virtual port. */
  port: number;
  /** The peer ID of a trailing `/p2p/` component, if any. */
  peerId?: string;
}

/**
 * Is `onion` a valid v3 onion address (56 base32 characters, version 3, correct checksum)?
 * Accepts an optional `.onion` suffix and either letter case.
 */
export function isOnion3Address(onion: string): boolean {
  const address = stripSuffix(onion).toLowerCase();
  if (!/^[a-z2-7]{56}$/.test(address)) return false;
  const bytes = base32Decode(address);
  if (bytes[34] !== 3) return false;
  const sum = onionChecksum(bytes.subarray(0, 32));
  return bytes[32] === sum[0] && bytes[33] === sum[1];
}

/**
 * The normalised form of `onion`: 56 lower-case characters, no `.onion`.
 * Throws a message that names the problem if it is not a valid v3 address.
 */
export function normaliseOnion3Address(onion: string): string {
  const address = stripSuffix(onion).toLowerCase();
  if (!/^[a-z2-7]*$/.test(address)) {
    throw new TypeError(`not a Tor v3 onion address: ${JSON.stringify(onion)} contains characters outside base32 (a-z, 2-7)`);
  }
  if (address.length !== 56) {
    throw new TypeError(`not a Tor v3 onion address: ${JSON.stringify(onion)} has ${address.length} characters, a v3 address has 56`);
  }
  if (!isOnion3Address(address)) {
    throw new TypeError(`not a Tor v3 onion address: ${JSON.stringify(onion)} has a wrong checksum or version (mistyped?)`);
  }
  return address;
}

/** The v3 onion address of an ed25519 public key (32 bytes), without `.onion`. */
export function onion3AddressFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new TypeError(`an ed25519 public key has 32 bytes, not ${publicKey.length}`);
  const bytes = new Uint8Array(35);
  bytes.set(publicKey, 0);
  bytes.set(onionChecksum(publicKey), 32);
  bytes[34] = 3;
  return base32Encode(bytes);
}

/** `/onion3/<address>:<port>`, validated. `onion` may end in `.onion`. */
export function onion3Multiaddr(onion: string, port: number): Multiaddr {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`an onion service port is an integer in 1..65535, not ${port}`);
  }
  return multiaddr(`/onion3/${normaliseOnion3Address(onion)}:${port}`);
}

/**
 * Parses `/onion3/<address>:<port>`, optionally followed by `/p2p/<peer id>` and nothing else.
 * Returns undefined for anything else (other protocols, `/p2p-circuit`, a bad checksum, port 0).
 */
export function parseOnion3(ma: Multiaddr): Onion3Target | undefined {
  let components;
  try {
    components = ma.getComponents();
  } catch {
    return undefined;
  }
  const [first, second, ...rest] = components;
  if (first?.code !== ONION3_CODE || first.value == null || rest.length > 0) return undefined;
  if (second != null && (second.code !== P2P_CODE || second.value == null)) return undefined;
  const match = /^([A-Za-z2-7]{56}):([0-9]{1,5})$/.exec(first.value);
  if (match == null) return undefined;
  const address = match[1]!.toLowerCase();
  const port = Number(match[2]);
  if (port < 1 || port > 65535 || !isOnion3Address(address)) return undefined;
  return { address, host: `${address}.onion`, port, ...(second?.value != null ? { peerId: second.value } : {}) };
}

/** Is `ma` a dialable `/onion3/<address>:<port>[/p2p/<id>]` multiaddr? */
export function isOnion3(ma: Multiaddr): boolean {
  return parseOnion3(ma) != null;
}

function stripSuffix(onion: string): string {
  return onion.toLowerCase().endsWith('.onion') ? onion.slice(0, -'.onion'.length) : onion;
}

function onionChecksum(publicKey: Uint8Array): Uint8Array {
  return createHash('sha3-256')
    .update('.onion checksum')
    .update(publicKey)
    .update(Uint8Array.of(3))
    .digest()
    .subarray(0, 2);
}

// RFC 4648 base32, lower case, no padding: 56 characters <-> 35 bytes.
function base32Decode(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let i = 0;
  for (const c of text) {
    value = (value << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[i++] = (value >>> bits) & 0xff;
    }
  }
  return out;
}

function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(value >>> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}
