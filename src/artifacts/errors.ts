/**
 * Errors raised by artifact stores. Each carries the offending key and a stable `code`, so the
 * HTTP layer can map them (404 / 400) without knowing which backend threw.
 */

/** The object does not exist (or is not a regular object, e.g. a local folder). */
export class ArtifactNotFoundError extends Error {
  readonly code = 'artifact_not_found';
  readonly key: string;

  constructor(key: string, options?: ErrorOptions) {
    super(`artifact not found: ${key}`, options);
    this.name = 'ArtifactNotFoundError';
    this.key = key;
  }
}

/** The key (or list prefix) is malformed or would escape the store root. */
export class InvalidArtifactKeyError extends Error {
  readonly code = 'invalid_artifact_key';
  readonly key: string;
  /** Short human reason, e.g. `contains a ".." segment`. */
  readonly reason: string;

  constructor(key: string, reason: string, options?: ErrorOptions) {
    super(`invalid artifact key ${JSON.stringify(key)}: ${reason}`, options);
    this.name = 'InvalidArtifactKeyError';
    this.key = key;
    this.reason = reason;
  }
}

/**
 * The artifact store's server could not be reached or failed (connection refused or reset, a
 * timeout, a 5xx after the client's own retries): the request may succeed later, so the HTTP layer
 * answers 503, never 500.
 */
export class ArtifactStoreUnavailableError extends Error {
  readonly code = 'artifact_store_unavailable';

  constructor(description: string, options?: ErrorOptions) {
    // The cause (addresses, SDK details) goes to the log through `cause`, not into the message.
    super(`the artifact store (${description}) is unavailable`, options);
    this.name = 'ArtifactStoreUnavailableError';
  }
}
