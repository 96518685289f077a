/** What every service of the supervisor reports about itself. */
export interface Health {
  ok: boolean;
  /** A short human sentence: what is wrong, or what state it is in. */
  detail: string;
  [key: string]: unknown;
}

/** A part of the bridge that the supervisor starts, stops and asks for health. */
export interface Service {
  readonly name: string;
  start(signal?: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  health(): Health;
}
