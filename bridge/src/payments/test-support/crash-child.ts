// Child process of store.crash.test.ts: credits payments 0..N-1 (operation ids op-0…), one store
// transaction each, printing "credited i" only after the commit returned. The test kills it with SIGKILL
// mid-way and runs it again over the same list: already credited operations must come back as replays.
import { PaymentError } from '../errors.js';
import { PaymentStore } from '../store.js';
import type { PaymentRequest } from '../types.js';

const [dataDir, countArg] = process.argv.slice(2);
const count = Number(countArg);
const store = PaymentStore.open(dataDir!);
const request: PaymentRequest = {
  id: 'req_crash', service: 'tor', sessionId: 'ses_crash', amount: 1000n, asset: 'native', destination: 'GBRIDGE',
  memoHash: 'e'.repeat(64), creditBytes: 1024, createdAt: 1, expiresAt: 2, status: 'open',
};
if (!store.request(request.id)) {
  store.insertSession({ id: request.sessionId, tokenHash: Buffer.alloc(32, 7), visitorKey: 'circuit:1', createdAt: 1 });
  store.insertRequest(request, 'circuit:1');
}
const out: string[] = [];
for (let i = 0; i < count; i++) {
  try {
    store.credit({
      request, operationId: `op-${i}`, transactionHash: 'ab'.repeat(32), from: 'GPAYER', amount: 1000n, creditBytes: 1024,
      via: 'stream', createdAt: Date.now(),
    });
    out.push(`credited ${i}`);
  } catch (err) {
    if (!(err instanceof PaymentError) || err.code !== 'replay') throw err;
    out.push(`replay ${i}`);
  }
  // Synchronous writes: a line printed is a credit committed before the kill.
  if (out.length >= 16 || i === count - 1) {
    process.stdout.write(out.join('\n') + '\n');
    out.length = 0;
  }
}
store.close();
process.stdout.write('done\n');
