// Starts ONE private Tor network (3 authorities, 2 relays, a client; loopback only) for the whole jest run.
// Workers find it through the TORPLUS_TEST_TORNET environment variable (see support/tornet.ts), which they
// inherit from this process. TORPLUS_SKIP_TORNET=1 skips it (unit tests only).
//
// Jest loads this file outside its own module system: Node 22 loads it natively (type stripping), so jest's
// moduleNameMapper ('./x.js' -> './x.ts') does not apply. A resolve hook does the same mapping here, and the
// network module is imported dynamically once the hook is in place. Everything this file imports must
// therefore use only erasable TypeScript syntax (no enums, namespaces or parameter properties).
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { TorNetwork } from '../src/devnet/tornet.js';

declare global {
  // The handle, for global-teardown.ts (same process).
  var __torplusTestTorNetwork: TorNetwork | undefined;
  var __torplusJsToTsHook: boolean | undefined;
}

/** Resolve a relative './x.js' imported from a .ts file to './x.ts' when only the latter exists. */
function mapJsToTs(): void {
  if (globalThis.__torplusJsToTsHook) return;
  globalThis.__torplusJsToTsHook = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const parent = context.parentURL;
      if (
        parent?.startsWith('file:') &&
        parent.endsWith('.ts') &&
        (specifier.startsWith('./') || specifier.startsWith('../')) &&
        specifier.endsWith('.js')
      ) {
        const asJs = new URL(specifier, parent);
        const asTs = new URL(`${specifier.slice(0, -3)}.ts`, parent);
        if (!existsSync(fileURLToPath(asJs)) && existsSync(fileURLToPath(asTs))) return nextResolve(asTs.href, context);
      }
      return nextResolve(specifier, context);
    },
  });
}

export default async function globalSetup(): Promise<void> {
  if (process.env.TORPLUS_SKIP_TORNET === '1') {
    console.log('\nTORPLUS_SKIP_TORNET=1: no private Tor network for this run');
    return;
  }
  mapJsToTs();
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
