// Errors that say what went wrong and what to do about it. `name` is stable, for matching.

/** `socks` is not configured, or returned undefined: there is no tor to dial through. */
export class NoSocksPortError extends Error {
  override readonly name = 'NoSocksPortError';
}

/** tor's SOCKS port could not be reached or did not speak SOCKS5. */
export class SocksProxyError extends Error {
  override readonly name = 'SocksProxyError';
}

/** tor answered, but could not connect to the onion service (offline, unknown, or unreachable). */
export class OnionUnreachableError extends Error {
  override readonly name = 'OnionUnreachableError';
  /** The SOCKS5 reply tor gave, by name as the `socks` package spells it (e.g. "HostUnreachable"). */
  readonly reply: string | undefined;

  constructor(message: string, reply: string | undefined) {
    super(message);
    this.reply = reply;
  }
}
