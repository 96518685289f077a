import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Helia } from '@helia/interface';
import { FsBlockstore } from 'blockstore-fs';
import { NextToLast } from 'blockstore-fs/sharding';
import { fsStoredBlocks, type StoredBlocks } from './pins.js';
import { FsDatastore } from 'datastore-fs';
import { createHeliaLight } from 'helia';
import { withBitswap, type BitswapOptions } from '@helia/bitswap';
import { withLibp2pLight, type CreateLibp2pOptions, type HeliaWithLibp2p } from '@helia/libp2p';
import type { Libp2p } from '@libp2p/interface';

/**
 * The embedded IPFS node: Helia from createHeliaLight, with libp2p (onion3 only) and bitswap when
 * given p2p options, and nothing else: no routers, no DHT, no discovery. The default createHelia()
 * would start autoNAT, the DHT, relays, UPnP and dial the public bootstrap peers (field notes):
 * useless offline and forbidden here. Blocks and pins live under `dir` and survive restarts.
 */
export interface IpfsNode {
  helia: Helia;
  /** libp2p, when the node was opened with p2p options. */
  libp2p: Libp2p | undefined;
  /**
   * The FS blockstore under Helia's own: publishing writes here directly. Helia's wrapper takes a
   * lock and emits events per block, which made publishing many small files 2-3 times slower; the
   * publisher orders itself against gc with the StorageLock instead.
   */
  store: FsBlockstore;
  /** The same blocks as files, listed for garbage collection (PinStore.gc). */
  stored: StoredBlocks;
}

export interface OpenIpfsNodeOptions {
  signal?: AbortSignal;
  /** libp2p over onion3 and bitswap; without it the node is offline (publish, gateway, HTTP fill). */
  p2p?: CreateLibp2pOptions;
  bitswap?: BitswapOptions;
}

export async function openIpfsNode(dir: string, options: OpenIpfsNodeOptions = {}): Promise<IpfsNode> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const sharding = new NextToLast();
  const blockstore = new FsBlockstore(join(dir, 'blocks'), { shardingStrategy: sharding });
  const datastore = new FsDatastore(join(dir, 'datastore'));
  options.signal?.throwIfAborted();
  const light = createHeliaLight({ blockstore, datastore });
  const helia = options.p2p ? withBitswap(withLibp2pLight(light, options.p2p), options.bitswap) : light;
  await helia.start();
  const libp2p = options.p2p ? (helia as Helia & HeliaWithLibp2p).libp2p : undefined;
  return { helia, libp2p, store: blockstore, stored: fsStoredBlocks(join(dir, 'blocks'), sharding, blockstore) };
}
