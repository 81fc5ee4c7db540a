import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline, Readable, Transform } from 'node:stream';

import type { ArtifactInfo, ArtifactStore } from './artifact-store.ts';
import { ArtifactNotFoundError, ArtifactStoreUnavailableError, InvalidArtifactKeyError } from './errors.ts';
import { compareKeys, validateKey, validatePrefix } from './keys.ts';

/** Most keys one DeleteObjects request may carry (S3 limit). */
const DELETE_BATCH = 1000;
const MIN_PART_SIZE = 5 * 1024 * 1024;

/** Options of {@link S3ArtifactStore}. Credentials and region default to the standard AWS provider chain. */
export interface S3ArtifactStoreOptions {
  /** Custom endpoint of an S3-compatible server (MinIO, Ceph, ...), e.g. `http://127.0.0.1:9000`. */
  readonly endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`); most self-hosted servers need it. Default false. */
  readonly forcePathStyle?: boolean;
  /** Region; default from the AWS chain, or `us-east-1` when only an endpoint is given and the chain has none. */
  readonly region?: string;
  /** Explicit credentials, for endpoint-only setups; default the AWS provider chain (env, files, IMDS...). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Keys per ListObjectsV2 page, 1..1000. Default 1000 (tests lower it to exercise pagination). */
  readonly listPageSize?: number;
  /** Part size of multipart uploads of streams, at least 5 MiB. Default 8 MiB. */
  readonly partSize?: number;
  /** Parts uploaded in parallel per stream; memory use is about partSize x this. Default 4. */
  readonly uploadConcurrency?: number;
  /**
   * When the SDK adds request checksums. AWS accepts the default `when_supported`; some
   * S3-compatible servers do not understand the newer checksum headers, hence the switch.
   */
  readonly requestChecksums?: 'when_supported' | 'when_required';
}

/** Splits `s3://bucket/some/prefix` into bucket and a normalized key prefix (`some/prefix/` or `''`). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(url);
  const bucket = match?.[1];
  if (!bucket) throw new Error(`not an s3:// URL with a bucket: ${url}`);
  let prefix = match[2] ?? '';
  while (prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  if (prefix.length > 0) {
    try {
      validateKey(prefix);
    } catch (err) {
      throw new Error(`invalid prefix in ${url}: ${(err as Error).message}`, { cause: err });
    }
    prefix += '/';
  }
  return { bucket, prefix };
}

/**
 * Artifact store on an S3 bucket (AWS or any S3-compatible server), all keys below an optional
 * prefix. Buffers are sent with one PutObject; streams go through `@aws-sdk/lib-storage`, which
 * switches to a multipart upload beyond one part, so datasets of any size stream without being
 * held in memory. S3 itself makes each upload atomic: an aborted stream never leaves an object.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly description: string;
  readonly bucket: string;
  /** Key prefix inside the bucket, `''` or ending in `/`. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly #pageSize: number;
  readonly #partSize: number;
  readonly #queueSize: number;

  /**
   * @param url `s3://bucket` or `s3://bucket/prefix`
   * @param options endpoint/addressing/credentials and tuning; see {@link S3ArtifactStoreOptions}
   */
  constructor(url: string, options: S3ArtifactStoreOptions = {}) {
    const { bucket, prefix } = parseS3Url(url);
    this.bucket = bucket;
    this.prefix = prefix;
    this.description = `s3://${bucket}/${prefix}`;
    this.#pageSize = clampInt(options.listPageSize ?? 1000, 1, 1000, 'listPageSize');
    this.#partSize = clampInt(options.partSize ?? 8 * 1024 * 1024, MIN_PART_SIZE, 5 * 1024 ** 3, 'partSize');
    this.#queueSize = clampInt(options.uploadConcurrency ?? 4, 1, 64, 'uploadConcurrency');
    const checksums = options.requestChecksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
    const config: S3ClientConfig = {
      forcePathStyle: options.forcePathStyle ?? false,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
    };
    if (options.endpoint) config.endpoint = options.endpoint;
    // With an endpoint (MinIO and the like) a region must still be named; AWS_REGION reaches here
    // through the configuration (`s3Options`), and the SDK finds it itself otherwise.
    const region = options.region ?? (options.endpoint ? 'us-east-1' : undefined);
    if (region) config.region = region;
    if (options.credentials) config.credentials = { ...options.credentials };
    this.client = new S3Client(config);
  }

  put(key: string, body: Buffer | Uint8Array | Readable): Promise<ArtifactInfo> {
    return this.#guard(() => this.#put(key, body));
  }

  getBuffer(key: string): Promise<Buffer> {
    return this.#guard(() => this.#getBuffer(key));
  }

  getStream(key: string): Promise<Readable> {
    return this.#guard(() => this.#getStream(key));
  }

  stat(key: string): Promise<ArtifactInfo | undefined> {
    return this.#guard(() => this.#stat(key));
  }

  list(prefix: string): Promise<ArtifactInfo[]> {
    return this.#guard(() => this.#list(prefix));
  }

  delete(key: string): Promise<void> {
    return this.#guard(() => this.#delete(key));
  }

  deletePrefix(prefix: string): Promise<number> {
    return this.#guard(() => this.#deletePrefix(prefix));
  }

  /**
   * Runs one operation, turning a server that cannot be reached or fails (after the SDK's own
   * retries) into `ArtifactStoreUnavailableError`, which the HTTP layer answers with 503.
   */
  async #guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      throw isUnavailable(err) ? new ArtifactStoreUnavailableError(this.description, { cause: err }) : err;
    }
  }

  async #put(key: string, body: Buffer | Uint8Array | Readable): Promise<ArtifactInfo> {
    let Key: string;
    try {
      Key = this.#fullKey(key);
    } catch (err) {
      if (!(body instanceof Uint8Array)) body.destroy();
      throw err;
    }
    let etag: string | undefined;
    let size: number;
    if (body instanceof Uint8Array) {
      size = body.byteLength;
      const out = await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: size }),
      );
      etag = out.ETag;
    } else {
      // Count bytes on the way through (lib-storage does not report the total for streams).
      let counted = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          counted += chunk.length;
          done(null, chunk);
        },
      });
      // Remember the source's own failure: if a multipart upload then fails to abort, the SDK
      // reports the abort error, which would hide the real cause.
      let sourceError: unknown;
      body.once('error', (err) => {
        sourceError ??= err;
      });
      pipeline(body, counter, () => undefined);
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key, Body: counter },
        partSize: this.#partSize,
        queueSize: this.#queueSize,
      });
      try {
        const out = await upload.done();
        etag = out.ETag;
      } catch (err) {
        counter.destroy();
        if (!body.destroyed) body.destroy();
        throw sourceError ?? err;
      }
      size = counted;
    }
    const tag = unquote(etag);
    // PutObject does not return LastModified; take it from the stored object, unless another
    // writer replaced it meanwhile, in which case report what this call wrote.
    const head = await this.#stat(key);
    if (head && (tag === undefined || head.etag === tag)) return head;
    return { key, size, etag: tag ?? '', lastModified: new Date() };
  }

  async #getBuffer(key: string): Promise<Buffer> {
    const body = await this.#getBody(key);
    return Buffer.from(await body.transformToByteArray());
  }

  async #getStream(key: string): Promise<Readable> {
    const body = await this.#getBody(key);
    // In Node the SDK body is an http.IncomingMessage, i.e. already a Readable.
    if (body instanceof Readable) return body;
    return Readable.fromWeb(body.transformToWebStream() as Parameters<typeof Readable.fromWeb>[0]);
  }

  async #stat(key: string): Promise<ArtifactInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#fullKey(key) }));
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: unquote(out.ETag) ?? '',
        lastModified: out.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async #list(prefix: string): Promise<ArtifactInfo[]> {
    const out: ArtifactInfo[] = [];
    for await (const page of this.#pages(prefix)) {
      for (const object of page) {
        const full = object.Key;
        if (!full?.startsWith(this.prefix)) continue;
        const key = full.slice(this.prefix.length);
        // Zero-byte "folder" markers made by consoles are not objects of this store.
        if (key.length === 0 || key.endsWith('/')) continue;
        out.push({ key, size: object.Size ?? 0, etag: unquote(object.ETag) ?? '', lastModified: object.LastModified ?? new Date(0) });
      }
    }
    // S3 already lists in UTF-8 byte order; some compatible servers do not.
    out.sort((a, b) => compareKeys(a.key, b.key));
    return out;
  }

  async #delete(key: string): Promise<void> {
    // S3 answers 204 whether or not the key existed.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#fullKey(key) }));
  }

  async #deletePrefix(prefix: string): Promise<number> {
    // Deleting within the paging loop would shift the pages under the continuation token;
    // collect first, then delete in batches.
    const keys: string[] = [];
    let objects = 0;
    for await (const page of this.#pages(prefix)) {
      for (const object of page) {
        if (!object.Key?.startsWith(this.prefix)) continue;
        keys.push(object.Key);
        if (!object.Key.endsWith('/')) objects++;
      }
    }
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const out = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(
          `failed to delete ${failed.length} object(s) under ${this.description}${prefix}: ${first?.Key ?? '?'}: ${first?.Code ?? ''} ${first?.Message ?? ''}`.trim(),
        );
      }
    }
    return objects;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  #fullKey(key: string): string {
    return this.prefix + validateKey(key);
  }

  async *#pages(prefix: string) {
    const Prefix = this.prefix + validatePrefix(prefix);
    let ContinuationToken: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix, MaxKeys: this.#pageSize, ContinuationToken }),
      );
      yield out.Contents ?? [];
      ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async #getBody(key: string) {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#fullKey(key) }));
      if (!out.Body) throw new ArtifactNotFoundError(key);
      return out.Body;
    } catch (err) {
      if (err instanceof ArtifactNotFoundError || err instanceof InvalidArtifactKeyError) throw err;
      if (isNotFound(err)) throw new ArtifactNotFoundError(key, { cause: err });
      throw err;
    }
  }
}

function isNotFound(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: number } };
  // A missing bucket is a configuration problem, not a missing artifact.
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** Socket errors of an S3 server that is down or unreachable. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);

/** True for an S3 failure that may pass by itself: no connection, a timeout, or a 5xx answer. */
function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; errors?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.name === 'TimeoutError' || e.name === 'RequestTimeout') return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500;
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((inner) => isUnavailable(inner));
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/"/g, '');
}

function clampInt(value: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}
