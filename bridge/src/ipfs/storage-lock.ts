/**
 * Orders writers of the node's storage against garbage collection. Helia's gc deletes every
 * unpinned block, and between writing a DAG's blocks (publish, fill) and pinning it those blocks
 * are unpinned: a gc in that window would delete them. Writers share the lock; gc takes it alone.
 */
export class StorageLock {
  private readers = 0;
  private writer: Promise<void> | undefined;
  private readonly waiting: Array<() => void> = [];

  /** Runs `fn` while no gc runs; any number of these run at once. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      if (this.readers === 0) this.waiting.splice(0).forEach((wake) => wake());
    }
  }

  /** Runs `fn` alone: after the current writers finish, and before new ones start. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    let release!: () => void;
    this.writer = new Promise<void>((r) => (release = r));
    try {
      while (this.readers > 0) await new Promise<void>((r) => this.waiting.push(r));
      return await fn();
    } finally {
      this.writer = undefined;
      release();
    }
  }
}
