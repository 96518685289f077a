import { GatewayError } from './errors.js';

export const CAR_TYPE = 'application/vnd.ipld.car';
export const RAW_TYPE = 'application/vnd.ipld.raw';
/** What our CARs are, always said in full (IPIP-412: a gateway SHOULD state order and dups). */
export const CAR_CONTENT_TYPE = `${CAR_TYPE}; version=1; order=dfs; dups=n`;

export interface MediaRange {
  type: string; // lowercased "type/subtype"
  params: Record<string, string>; // lowercased names, values unquoted
  q: number;
}

/**
 * Parses an Accept header (RFC 9110 §12.5.1) into media ranges, highest q first, ties in the order
 * given. Quoted parameter values may contain commas and semicolons, so this is a small scanner
 * rather than a split. Ranges with q=0 ("not acceptable") and unparsable ones are dropped.
 */
export function parseAccept(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const element of splitOutsideQuotes(header, ',')) {
    const [typePart, ...paramParts] = splitOutsideQuotes(element, ';');
    const type = (typePart ?? '').trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(type)) continue;
    const params: Record<string, string> = {};
    let q = 1;
    let valid = true;
    for (const p of paramParts) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const name = p.slice(0, eq).trim().toLowerCase();
      let value = p.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      if (name === 'q') {
        q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value) ? Number(value) : NaN;
        if (Number.isNaN(q)) valid = false;
      } else {
        params[name] = value;
      }
    }
    if (valid && q > 0) out.push({ type, params, q });
  }
  // Array.prototype.sort is stable, so equal q keeps the client's order.
  return out.sort((a, b) => b.q - a.q);
}

function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '\\' && i + 1 < text.length) {
      current += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts.filter((p) => p.trim() !== '');
}

export type ResponseFormat = 'deserialized' | 'raw' | 'car';

export interface Negotiated {
  format: ResponseFormat;
  /** True when the format came from Accept rather than ?format=, so Content-Location should name it. */
  viaAccept: boolean;
}

/** Response types that other gateways offer and this one does not, so a client asking only for them gets a 406. */
const KNOWN_UNSUPPORTED = new Set([
  'application/x-tar',
  'application/vnd.ipld.dag-json',
  'application/vnd.ipld.dag-cbor',
  'application/vnd.ipfs.ipns-record',
]);

const SUPPORTED = 'supported: format=raw (application/vnd.ipld.raw), format=car (application/vnd.ipld.car; version=1; order=dfs; dups=n), or no format for deserialized UnixFS';

/** Whether we can produce a CAR with these version/order/dups parameters (ours: 1, dfs, n). */
function carParamsProblem(version?: string, order?: string, dups?: string): string | undefined {
  if (version !== undefined && version !== '1') return `CAR version ${version} is not supported, only version=1`;
  if (order !== undefined && order !== 'dfs' && order !== 'unk') return `CAR order=${order} is not supported, only order=dfs`;
  if (dups !== undefined && dups !== 'n') return `CAR dups=${dups} is not supported, only dups=n`;
  return undefined;
}

/**
 * Picks the response type: ?format= wins over Accept (trustless gateway spec); Accept is read by q.
 * The first acceptable range decides; anything that is not one of the verifiable types (text/html,
 * star/star, ...) means the ordinary deserialized response.
 */
export function negotiate(query: URLSearchParams, accept: string | undefined): Negotiated {
  const format = query.get('format');
  if (format !== null) {
    if (format === 'raw') return { format: 'raw', viaAccept: false };
    if (format === 'car') {
      const problem = carParamsProblem(query.get('car-version') ?? undefined, query.get('car-order') ?? undefined, query.get('car-dups') ?? undefined);
      if (problem) throw new GatewayError(400, problem);
      return { format: 'car', viaAccept: false };
    }
    throw new GatewayError(400, `format=${format} is not supported by this gateway; ${SUPPORTED}`);
  }
  if (accept === undefined || accept.trim() === '') return { format: 'deserialized', viaAccept: false };
  let refused: string | undefined;
  for (const range of parseAccept(accept)) {
    if (range.type === RAW_TYPE) return { format: 'raw', viaAccept: true };
    if (range.type === CAR_TYPE) {
      const problem = carParamsProblem(range.params['version'], range.params['order'], range.params['dups']);
      if (!problem) return { format: 'car', viaAccept: true };
      refused ??= problem;
      continue;
    }
    if (KNOWN_UNSUPPORTED.has(range.type)) {
      refused ??= `${range.type} is not supported by this gateway`;
      continue;
    }
    return { format: 'deserialized', viaAccept: false };
  }
  if (refused) throw new GatewayError(406, `${refused}; ${SUPPORTED}`);
  return { format: 'deserialized', viaAccept: false };
}
