// Two Helia nodes whose only transport is onion3: one fetches a 3 MB file from the other over
// bitswap, through the SOCKS5 stand-in, with tor's PROXY line on the serving side.
import { createHash, randomBytes } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { withBitswap } from '@helia/bitswap';
import { withLibp2pLight } from '@helia/libp2p';
import { unixfs } from '@helia/unixfs';
import { identify } from '@libp2p/identify';
import { MemoryBlockstore } from 'blockstore-core';
import { MemoryDatastore } from 'datastore-core';
import { createHeliaLight } from 'helia';
import { onion3, type Onion3Init } from './index.js';
import { onion3Multiaddr } from './onion3-address.js';
import { FakeTor } from './test-support/fake-tor.js';
import { fakeOnion } from './test-support/fake-onion.js';

async function heliaNode(tor: FakeTor, proxyProtocol: boolean) {
  const onion = fakeOnion();
  let localPort = 0;
  const init: Onion3Init = {
    socks: () => ({ host: '127.0.0.1', port: tor.port }),
    listen: { port: 0, onListening: (info) => (localPort = info.port) },
    proxyProtocol,
  };
  const helia = withBitswap(
    withLibp2pLight(createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() }), {
      transports: [onion3(init)],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() },
      addresses: { listen: [onion3Multiaddr(onion, 4001).toString()] },
    }),
  );
  await helia.start();
  tor.addService(onion, 4001, localPort, proxyProtocol);
  return { helia, addr: onion3Multiaddr(onion, 4001) };
}

describe('Helia over onion3', () => {
  it('fetches a 3 MB file with bitswap', async () => {
    const tor = new FakeTor();
    await tor.listen();
    const server = await heliaNode(tor, true);
    const client = await heliaNode(tor, false);
    try {
      const file = randomBytes(3 * 1024 * 1024);
      const cid = await unixfs(server.helia).addBytes(file);
      // The client starts without it: every block must cross the connection.
      expect(await client.helia.blockstore.has(cid)).toBe(false);

      await client.helia.libp2p.dial(server.addr);
      const chunks: Uint8Array[] = [];
      for await (const chunk of unixfs(client.helia).cat(cid, { signal: AbortSignal.timeout(30_000) })) chunks.push(chunk);
      const got = Buffer.concat(chunks);

      expect(got.length).toBe(file.length);
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(file).digest('hex'));
      expect(tor.circuits.length).toBeGreaterThan(0);
      // Every connection either node has is an onion3 one.
      for (const node of [client, server]) {
        for (const conn of node.helia.libp2p.getConnections()) expect(conn.remoteAddr.toString()).toMatch(/^\/onion3\//);
      }
    } finally {
      await client.helia.stop();
      await server.helia.stop();
      await tor.close();
    }
  });
});
