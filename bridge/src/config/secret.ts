import { inspect } from 'node:util';

/**
 * A secret value (the Stellar seed, the admin token). Printing, logging or serialising it shows
 * "[redacted]"; only `reveal()` gives the value, so a leak takes a deliberate call.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}
