/**
 * A failure with a known HTTP meaning. Thrown anywhere while a request is handled; the router turns
 * it into a plain-text response (or, once the body has started, into a destroyed connection).
 */
export class GatewayError extends Error {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'GatewayError';
    this.status = status;
    this.headers = headers;
  }
}

/** The client went away; nothing to answer and nothing to log. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

/**
 * Maps the errors of our own block store and of the UnixFS libraries to statuses. Matched by name:
 * the exporter and @helia/unixfs each define their own NotFoundError / NotUnixFSError classes, and
 * the copies installed under node_modules are not guaranteed to be the ones we could import.
 */
export function toGatewayError(err: unknown): GatewayError | undefined {
  if (err instanceof GatewayError) return err;
  if (!(err instanceof Error)) return undefined;
  switch (err.name) {
    case 'BlockMissingError':
      // The bridge only serves what it stores: a missing block is a definitive 404, not a retry.
      return new GatewayError(404, err.message);
    case 'NotFoundError':
    case 'DoesNotExistError':
      return new GatewayError(404, err.message);
    case 'NotUnixFSError':
    case 'NoResolverError':
    case 'UnsupportedCodecError':
    case 'InvalidPBNodeError':
      return new GatewayError(501, `${err.message} (this gateway deserializes only UnixFS: dag-pb and raw)`);
    default:
      return undefined;
  }
}

/**
 * Once the client has left, whatever the libraries throw (AbortError, a premature close, ...) is
 * a consequence of that, not a fault worth logging.
 */
export function isClientGone(err: unknown, signal: AbortSignal): boolean {
  return err instanceof ClientGoneError || signal.aborted;
}
