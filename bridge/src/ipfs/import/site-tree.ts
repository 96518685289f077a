import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A folder of the site as the importer sees it: files with sizes, folders, nothing else. */
export type SiteEntry = { kind: 'file'; path: string; size: number } | SiteDir;
export interface SiteDir {
  kind: 'dir';
  children: Map<string, SiteEntry>;
}

/**
 * Reads the tree under `dir` the way `globSource(dir, '**\/*')` does for the Helia importer, so both
 * give the same root: names starting with '.' are left out (with their contents), symbolic links are
 * followed. Sockets, FIFOs and devices are not content and are skipped.
 */
export async function readSiteTree(dir: string, signal?: AbortSignal): Promise<SiteDir> {
  const children = new Map<string, SiteEntry>();
  for (const d of await readdir(dir, { withFileTypes: true })) {
    signal?.throwIfAborted();
    if (d.name.startsWith('.')) continue;
    const path = join(dir, d.name);
    let isDir = d.isDirectory();
    let isFile = d.isFile();
    let size = 0;
    if (d.isSymbolicLink() || isFile) {
      const s = await stat(path).catch(() => undefined);
      if (!s) continue; // a dangling link
      isDir = s.isDirectory();
      isFile = s.isFile();
      size = s.size;
    }
    if (isDir) children.set(d.name, await readSiteTree(path, signal));
    else if (isFile) children.set(d.name, { kind: 'file', path, size });
  }
  return { kind: 'dir', children };
}
