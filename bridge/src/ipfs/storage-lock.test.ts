import { StorageLock } from './storage-lock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('StorageLock', () => {
  it('runs shared work together and exclusive work alone, in between', async () => {
    const lock = new StorageLock();
    const log: string[] = [];
    let releaseA!: () => void;
    const a = lock.shared(async () => {
      log.push('a+');
      await new Promise<void>((r) => (releaseA = r));
      log.push('a-');
    });
    const b = lock.shared(async () => {
      log.push('b+');
      await tick();
      log.push('b-');
    });
    await tick();
    const gc = lock.exclusive(async () => {
      log.push('gc+');
      await tick();
      log.push('gc-');
    });
    await tick();
    // A writer that arrives while gc waits runs after it.
    const c = lock.shared(async () => void log.push('c'));
    await tick();
    expect(log).toEqual(['a+', 'b+', 'b-']);
    releaseA();
    await Promise.all([a, b, gc, c]);
    expect(log).toEqual(['a+', 'b+', 'b-', 'a-', 'gc+', 'gc-', 'c']);
  });

  it('releases the lock when the work throws', async () => {
    const lock = new StorageLock();
    await expect(lock.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.shared(async () => 7)).resolves.toBe(7);
  });
});
