import type { CID } from 'multiformats/cid';
import { parseCid } from '../dag.js';
import { GatewayError } from './errors.js';

/** Longer request paths are refused before any work: no real content path needs more. */
export const MAX_PATH_LENGTH = 4096;
export const MAX_SEGMENTS = 128;

/** A request URL under /ipfs/, split and decoded, not yet resolved against any block. */
export interface ContentPath {
  root: CID;
  /** Decoded names after the CID, in order. Empty names (from `//`) are dropped. */
  segments: string[];
  trailingSlash: boolean;
  /**
   * The requested content path re-encoded from the decoded parts (`/ipfs/<cid>/sub/a%20b.txt`):
   * ASCII only, so it is safe in X-Ipfs-Path and in a redirect's Location.
   */
  ipfsPath: string;
  query: URLSearchParams;
  /** The query string as received, without `?`; '' when there is none. Kept verbatim for redirects. */
  rawQuery: string;
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new GatewayError(400, `malformed percent-encoding in path segment "${text.slice(0, 100)}"`);
  }
}

export function encodeSegment(name: string): string {
  return encodeURIComponent(name);
}

/**
 * Parses the request target of `/ipfs/{cid}[/{path}][?{params}]`. Percent-decoding happens per
 * segment after splitting, so an encoded `%2F` stays inside one name (and then matches no entry,
 * since UnixFS names cannot hold a slash) instead of adding a level.
 */
export function parseContentPath(url: string): ContentPath {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  if (rawPath.length > MAX_PATH_LENGTH) throw new GatewayError(400, `request path is too long (over ${MAX_PATH_LENGTH} characters)`);
  if (rawPath === '/ipns' || rawPath.startsWith('/ipns/')) throw new GatewayError(501, 'IPNS paths are not supported by this gateway; use /ipfs/{cid}');
  if (rawPath !== '/ipfs' && !rawPath.startsWith('/ipfs/')) throw new GatewayError(404, 'not an /ipfs/{cid} path');
  const parts = rawPath.slice('/ipfs/'.length).split('/');
  const cidText = decodeSegment(parts[0] ?? '');
  if (cidText === '') throw new GatewayError(400, 'missing CID: expected /ipfs/{cid}[/{path}]');
  const root = parseCid(cidText);
  if (!root) throw new GatewayError(400, `invalid CID "${cidText.slice(0, 200)}": not a CIDv0 or a CIDv1 in base32, base36 or base58btc`);
  const rest = parts.slice(1);
  if (rest.length > MAX_SEGMENTS) throw new GatewayError(400, `request path has too many segments (over ${MAX_SEGMENTS})`);
  const segments = rest.map(decodeSegment).filter((s) => s !== '');
  const trailingSlash = rest.length > 0 && rest[rest.length - 1] === '';
  const ipfsPath = `/ipfs/${encodeSegment(cidText)}${segments.map((s) => `/${encodeSegment(s)}`).join('')}${trailingSlash ? '/' : ''}`;
  return { root, segments, trailingSlash, ipfsPath, query: new URLSearchParams(rawQuery), rawQuery };
}
