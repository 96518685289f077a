// Stops the private Tor network started by global-setup.ts.
import type { TorNetwork } from '../src/devnet/tornet.js';

declare global {
  var __torplusTestTorNetwork: TorNetwork | undefined;
}

export default async function globalTeardown(): Promise<void> {
  const network = globalThis.__torplusTestTorNetwork;
  globalThis.__torplusTestTorNetwork = undefined;
  delete process.env.TORPLUS_TEST_TORNET;
  await network?.stop();
}
