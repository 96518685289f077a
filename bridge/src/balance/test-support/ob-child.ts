// A process that runs a (fake) onionbalance under OnionbalanceProcess and prints its pid, for the test that
// kills this process with SIGKILL: onionbalance must not outlive it. argv: bin, configFile, masterOnion.
import { createLogger } from '../../log/logger.js';
import { OnionbalanceProcess } from '../onionbalance-process.js';

const [bin, configFile, masterOnion] = process.argv.slice(2) as [string, string, string];
const ob = new OnionbalanceProcess({ bin, configFile, masterOnion, testnet: true, controlPort: () => 9051, log: createLogger({ level: 'error' }) });
await ob.restart('child');
process.stdout.write(`pid ${ob.pid}\n`);
setInterval(() => {}, 60_000);
