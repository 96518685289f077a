import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Helia } from '@helia/interface';
import { FsBlockstore } from 'blockstore-fs';
import { NextToLast } from 'blockstore-fs/sharding';
import { fsStoredBlocks, type StoredBlocks } from './pins.js';
import { FsDatastore } from 'datastore-fs';
import { createHeliaLight } from 'helia';

/**
 * The embedded IPFS node: Helia without libp2p, routers or block brokers. The default
 * createHelia() would start autoNAT, the DHT, relays, UPnP and dial the public bootstrap peers
 * (field notes): useless offline and forbidden here. Peers are reached over Tor by `fill` instead.
 * Blocks and pins live under `dir` and survive restarts.
 */
export interface IpfsNode {
  helia: Helia;
  /**
   * The FS blockstore under Helia's own: publishing writes here directly. Helia's wrapper takes a
   * lock and emits events per block, which made publishing many small files 2-3 times slower; the
   * publisher orders itself against gc with the StorageLock instead.
   */
  store: FsBlockstore;
  /** The same blocks as files, listed for garbage collection (PinStore.gc). */
  stored: StoredBlocks;
}

export async function openIpfsNode(dir: string, options: { signal?: AbortSignal } = {}): Promise<IpfsNode> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const sharding = new NextToLast();
  const blockstore = new FsBlockstore(join(dir, 'blocks'), { shardingStrategy: sharding });
  const datastore = new FsDatastore(join(dir, 'datastore'));
  options.signal?.throwIfAborted();
  const helia = createHeliaLight({ blockstore, datastore });
  await helia.start();
  return { helia, store: blockstore, stored: fsStoredBlocks(join(dir, 'blocks'), sharding, blockstore) };
}
