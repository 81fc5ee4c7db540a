/**
 * Child process that runs a real s3rver for the S3 contract tests.
 *
 * Why a separate process: s3rver signs ListObjectsV2 continuation tokens with DES, which the
 * OpenSSL 3 bundled with Node >= 17 only provides through its legacy provider. The parent starts
 * this file with `--openssl-legacy-provider`, so pagination works without changing how the
 * test runner itself is started.
 *
 * Why its writes are replaced: s3rver 3.7 answers a PutObject (or UploadPart) once its hashing
 * transform has seen the last byte, before the file it streams into is written, and it writes
 * straight into the object's file, truncating it first. A HEAD or GET right after the answer can
 * then read an empty or partial object under the new ETag (CI saw `size 0` for a 6-byte
 * overwrite), and concurrent PUTs of one key interleave in one file. Real S3 answers once the
 * object is stored and replaces it atomically, which the contract tests expect; so this process
 * swaps in writes that finish the file and then rename it into place. They use the store's own
 * layout (`getResourcePath`, `putMetadata`), so they are tied to the s3rver version in the lockfile.
 *
 * argv: <data directory> <bucket>... Sends `{ port }` over IPC once listening; exits when the
 * parent disconnects or sends 'stop'.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
if (!directory || buckets.length === 0 || !process.send) {
  console.error('usage: fork s3rver-process.ts <directory> <bucket>... (with an IPC channel)');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});

/** The internals of s3rver's FilesystemStore that the replacement writes use or replace. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string | undefined): Promise<void>;
  putObject(object: S3ObjectToStore): Promise<Stored>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: Readable): Promise<Stored>;
}
interface S3ObjectToStore {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: unknown;
}
interface Stored {
  size: number;
  md5: string;
}

// Temporary files live outside the data directory, where s3rver would list them as buckets or
// objects, but on the same file system (both in tmpdir), so a rename moves them atomically.
const partials = await mkdtemp(path.join(tmpdir(), 'modelplane-s3rver-partial-'));

/** Streams `content` into a new file, waits until it is written and closed, then renames it to `target`. */
async function storeAtomically(target: string, content: Buffer | Readable): Promise<Stored> {
  const temporary = path.join(partials, randomUUID());
  const md5 = createHash('md5');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      md5.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(Buffer.isBuffer(content) ? Readable.from([content]) : content, measure, createWriteStream(temporary));
    await mkdir(path.dirname(target), { recursive: true });
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return { size, md5: md5.digest('hex') };
}

async function writeAtomically(target: string, data: string): Promise<void> {
  await storeAtomically(target, Buffer.from(data));
}

const store = (server as unknown as { store: FilesystemStore }).store;
store.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const stored = await storeAtomically(objectPath, object.content);
  // The ETag is a file too (`<object>.md5`): replace it whole; s3rver's putMetadata skips it
  // when given no md5 and writes only the metadata (the same for every write the tests make).
  await writeAtomically(`${objectPath}.md5`, stored.md5);
  await this.putMetadata(object.bucket, object.key, object.metadata, undefined);
  return stored;
};
store.putPart = async function putPart(bucket, uploadId, partNumber, content) {
  const partPath = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
  const stored = await storeAtomically(partPath, content);
  await writeAtomically(`${partPath}.md5`, stored.md5);
  return stored;
};

const { port } = await server.run();
process.send({ port });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close().catch(() => undefined);
  await rm(partials, { recursive: true, force: true });
  process.exit(0);
}
process.on('message', (message) => {
  if (message === 'stop') void stop();
});
process.on('disconnect', () => void stop());
