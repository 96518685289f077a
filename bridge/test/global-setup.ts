// Starts ONE private Tor network (3 authorities, 2 relays, a client; loopback only) for the whole jest run.
// Workers find it through the TORPLUS_TEST_TORNET environment variable (see support/tornet.ts), which they
// inherit from this process. TORPLUS_SKIP_TORNET=1 skips it (unit tests only).
//
// Jest loads this file outside its own module system: Node 22 loads it natively (type stripping), so jest's
// moduleNameMapper ('./x.js' -> './x.ts') does not apply. The resolve hook in support/ts-resolve.mjs (the one
// the tests' child processes use) does the same mapping here, and the network module is imported dynamically
// once the hook is in place. Everything this file imports must therefore use only erasable TypeScript syntax
// (no enums, namespaces or parameter properties).
import { performance } from 'node:perf_hooks';
import type { TorNetwork } from '../src/devnet/tornet.js';

declare global {
  // The handle, for global-teardown.ts (same process).
  var __torplusTestTorNetwork: TorNetwork | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.TORPLUS_SKIP_TORNET === '1') {
    console.log('\nTORPLUS_SKIP_TORNET=1: no private Tor network for this run');
    return;
  }
  // A computed specifier: the hook is plain JavaScript, loaded for its side effect (it registers on import).
  const hook: string = new URL('./support/ts-resolve.mjs', import.meta.url).href;
  await import(hook);
  const { startTorNetwork } = await import('../src/devnet/tornet.js');
  const t0 = performance.now();
  const verbose = process.env.TORPLUS_TORNET_VERBOSE === '1';
  const network = await startTorNetwork(verbose ? { log: (line) => console.log(line) } : {});
  globalThis.__torplusTestTorNetwork = network;
  process.env.TORPLUS_TEST_TORNET = JSON.stringify({
    dir: network.dir,
    socksPort: network.socksPort,
    joinConfigFile: network.joinConfigFile,
  });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`\nprivate Tor network up in ${secs} s (SocksPort 127.0.0.1:${network.socksPort}, ${network.dir})`);
}
