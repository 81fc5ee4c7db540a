import type { Readable } from 'node:stream';

/** Metadata of one stored object. */
export interface ArtifactInfo {
  /** Key relative to the store root, `/`-separated, never starting with `/`. */
  readonly key: string;
  readonly size: number;
  /** Opaque version tag that changes when the content changes (S3 ETag, or mtime+size locally). */
  readonly etag: string;
  readonly lastModified: Date;
}

/**
 * Where models, datasets and run files live: a local directory or an S3-compatible bucket.
 * Keys are relative `/`-separated paths; keys that try to escape the root (`..`, absolute paths,
 * backslashes, NUL) are refused with an `InvalidArtifactKeyError`.
 */
export interface ArtifactStore {
  /** Human description, e.g. `local:/data/artifacts` or `s3://bucket/prefix`. */
  readonly description: string;
  /**
   * Writes (replacing) an object from bytes or a stream; returns its info. Atomic: readers never
   * see a partial object. If the write fails (invalid key, stream error, backend error) a stream
   * body is destroyed and the previous version, if any, stays in place.
   */
  put(key: string, body: Buffer | Uint8Array | Readable): Promise<ArtifactInfo>;
  /** Reads a whole object. Throws `ArtifactNotFoundError` if absent. */
  getBuffer(key: string): Promise<Buffer>;
  /** Streams an object. Throws `ArtifactNotFoundError` if absent. */
  getStream(key: string): Promise<Readable>;
  /** Info of one object, or `undefined` if absent. */
  stat(key: string): Promise<ArtifactInfo | undefined>;
  /** Every object whose key starts with `prefix` (a folder when it ends in `/`), sorted by key. */
  list(prefix: string): Promise<ArtifactInfo[]>;
  /** Deletes one object; absent is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every object under a prefix; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Removes the temporary files of writes that never finished (a process killed mid-upload)
   * under `prefix`, last modified before `before` (ms since the epoch); returns how many.
   * Stores whose unfinished writes leave nothing visible (S3: an aborted multipart upload is the
   * bucket's lifecycle rule's to expire) do not implement it.
   */
  sweepTemporary?(prefix: string, before: number): Promise<number>;
  /** Releases clients and handles. */
  close(): Promise<void>;
}
