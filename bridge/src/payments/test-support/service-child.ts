// Child process of payments-service.crash.test.ts: a PaymentsService on the parent's local ledger, which
// credits the payments it finds on its account's stream. Prints "credited <operation> <request>" for each
// 'complete' event (after the commit), and is killed with SIGKILL by the test while it works.
import { Keypair } from '@stellar/stellar-sdk';
import { createLogger } from '../../log/logger.js';
import { PaymentsService } from '../payments-service.js';
import { testConfig } from './fixtures.js';

const [horizonUrl, dataDir] = process.argv.slice(2);
const seed = process.env.TEST_BRIDGE_SEED!;
const service = new PaymentsService({
  config: testConfig(seed, { horizonUrl: horizonUrl! }),
  dataDir: dataDir!,
  log: createLogger({ level: 'warn', json: true, stream: process.stderr, secrets: [seed] }),
});
service.on('complete', (c) => process.stdout.write(`credited ${c.receipt.operationId} ${c.request.id}\n`));
await service.start();
process.stdout.write(`ready ${Keypair.fromSecret(seed).publicKey()}\n`);
process.on('SIGTERM', () => void service.stop().then(() => process.exit(0)));
