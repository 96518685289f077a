import type { DirectoryStats, FileStats, RawStats, UnixFS } from '@helia/unixfs';
import type { CID } from 'multiformats/cid';
import type { DagBlock } from '../dag.js';
import type { ContentPath } from './content-path.js';
import { encodeSegment } from './content-path.js';
import { GatewayError } from './errors.js';
import type { RequestBlocks } from './request-blocks.js';

export type Entry = FileStats | DirectoryStats | RawStats;

export interface Resolved {
  /** One CID per logical root: the request's root, then one per path segment (X-Ipfs-Roots). */
  roots: CID[];
  entry: Entry;
  /** The last path segment, which names the file for Content-Type; undefined for a bare CID. */
  name: string | undefined;
}

const isNotFound = (err: unknown) => err instanceof Error && (err.name === 'NotFoundError' || err.name === 'DoesNotExistError');

/**
 * Looks `name` up in a directory (plain or HAMT-sharded; @helia/unixfs knows both). One segment per
 * call, with the name checked first: the library joins paths into a string and splits on `/`, so a
 * decoded `a/b` would otherwise walk two levels, and it steps "into" a file by ignoring the rest.
 */
export async function lookup(fs: UnixFS, dir: CID, name: string, signal: AbortSignal): Promise<Entry | undefined> {
  if (name === '.' || name === '..' || name.includes('/')) return undefined;
  try {
    return await fs.stat(dir, { path: name, offline: true, signal });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Walks the content path through UnixFS. `..` and `.` are ordinary names that no entry has, so they
 * resolve to nothing rather than moving up: a path can never leave the DAG its CID names.
 */
export async function resolveContentPath(fs: UnixFS, path: ContentPath, signal: AbortSignal): Promise<Resolved> {
  let entry: Entry = await fs.stat(path.root, { offline: true, signal });
  const roots: CID[] = [entry.cid];
  let where = `/ipfs/${path.root}`;
  for (const name of path.segments) {
    if (entry.type !== 'directory') throw new GatewayError(404, `${where} is a file, so it has no entry "${name}"`);
    const child = await lookup(fs, entry.cid, name, signal);
    if (!child) throw new GatewayError(404, `no entry "${name}" in ${where}`);
    entry = child;
    roots.push(entry.cid);
    where += `/${encodeSegment(name)}`;
  }
  return { roots, entry, name: path.segments.at(-1) };
}

export interface Terminal {
  roots: CID[];
  cid: CID;
  bytes: Uint8Array;
  /** Blocks read to walk from the root to the terminal, root first, the terminal's own excluded. */
  pathBlocks: DagBlock[];
}

/**
 * For the verifiable responses: the terminal block and the blocks that prove the path to it. A bare
 * CID needs no UnixFS at all (any codec can be fetched as a block or a CAR); a path is walked through
 * UnixFS like a deserialized request, and the blocks that walk read are the path's proof.
 */
export async function resolveTerminal(fs: UnixFS, reader: RequestBlocks, path: ContentPath, signal: AbortSignal): Promise<Terminal> {
  if (path.segments.length === 0) {
    const bytes = await reader.get(path.root);
    reader.stopKeeping();
    return { roots: [path.root], cid: path.root, bytes, pathBlocks: [] };
  }
  const resolved = await resolveContentPath(fs, path, signal);
  const cid = resolved.entry.cid;
  const bytes = await reader.get(cid);
  reader.stopKeeping();
  const pathBlocks = reader.keptBlocks().filter((b) => !b.cid.equals(cid));
  return { roots: resolved.roots, cid, bytes, pathBlocks };
}
