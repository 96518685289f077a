// Jobs that must run on one bridge at a time (watching the account's payment stream, settling tabs, ACME,
// the TXT record check): each is led by whichever bridge holds its lock. One bridge alone leads them all;
// bridges sharing PostgreSQL take a PostgreSQL advisory lock per job (pg-leadership.ts), which the
// database drops when the holder's connection ends, so a bridge that dies hands its jobs over.

/** What a job is told: it leads now (start working), or no longer (stop at once). */
export interface JobHandlers {
  lead(): void | Promise<void>;
  lose(): void | Promise<void>;
}

export interface Leadership {
  /** Starts competing for `job`; the returned function stops (and gives the job up if held). */
  follow(job: string, handlers: JobHandlers): () => Promise<void>;
  /** The jobs this bridge leads now (for /healthz). */
  leading(): string[];
}

/** One bridge: it leads every job, at once. */
export class SoloLeadership implements Leadership {
  private readonly held = new Set<string>();

  follow(job: string, handlers: JobHandlers): () => Promise<void> {
    this.held.add(job);
    const started = Promise.resolve(handlers.lead());
    return async () => {
      await started.catch(() => undefined);
      this.held.delete(job);
      await handlers.lose();
    };
  }

  leading(): string[] {
    return [...this.held];
  }
}
