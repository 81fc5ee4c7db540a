/**
 * Single-file mode (`MODEL_PATH`): where the one model file lives, a local path or `s3://bucket/key`,
 * read through a tag that changes with its content (S3 ETag; size + mtime locally).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { S3ArtifactStoreOptions } from '../artifacts/s3.ts';

export interface ModelFileSource {
  /** The path or URL, for messages. */
  readonly location: string;
  /** Content tag now; throws when the file cannot be reached. */
  tag(): Promise<string>;
  read(): Promise<{ bytes: Uint8Array; tag: string }>;
  close(): Promise<void>;
}

/** A source for `MODEL_PATH`: `s3://bucket/key` or a local file path. */
export function modelFileSource(location: string, s3: S3ArtifactStoreOptions = {}): ModelFileSource {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (m !== null) {
    // Loaded on demand: the AWS SDK is heavy and most deployments never need it.
    const store = import('../artifacts/s3.ts').then(({ S3ArtifactStore }) => new S3ArtifactStore(`s3://${m[1]!}`, s3));
    return new S3FileSource(location, store, m[2]!);
  }
  return new LocalFileSource(path.resolve(location));
}

class LocalFileSource implements ModelFileSource {
  constructor(readonly location: string) {}

  async tag(): Promise<string> {
    const st = await stat(this.location, { bigint: true });
    return `${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
  }

  async read(): Promise<{ bytes: Uint8Array; tag: string }> {
    const tag = await this.tag();
    return { bytes: await readFile(this.location), tag };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class S3FileSource implements ModelFileSource {
  constructor(
    readonly location: string,
    private readonly store: Promise<ArtifactStore>,
    private readonly key: string,
  ) {}

  async tag(): Promise<string> {
    const info = await (await this.store).stat(this.key);
    if (info === undefined) throw new Error(`${this.location} does not exist`);
    return info.etag;
  }

  async read(): Promise<{ bytes: Uint8Array; tag: string }> {
    const tag = await this.tag();
    return { bytes: await (await this.store).getBuffer(this.key), tag };
  }

  async close(): Promise<void> {
    await (await this.store).close();
  }
}
