/**
 * S3ArtifactStore against a real S3-protocol server (s3rver in a child process), not an SDK mock.
 *
 * s3rver quirks these tests account for:
 * - ListObjectsV2 continuation tokens are DES-encrypted, which needs OpenSSL's legacy provider
 *   on Node >= 17; the server therefore runs in a child started with --openssl-legacy-provider.
 * - It walks its storage folder in file-name order, which differs from key order when a name
 *   and a longer sibling differ by a character below '/' (e.g. `a` vs `a-b`), so paging can
 *   skip keys there; the pagination tests use same-length, zero-padded names.
 * - PutObject and UploadPart answer before the object's file is written, and write into it in
 *   place; the child process (s3rver-process.ts) replaces those writes with ones that finish the
 *   file and rename it into place, as real S3 stores an object whole before it answers.
 * - It does not implement AbortMultipartUpload; the store reports the stream's own error instead
 *   of the failed abort, and an unfinished multipart upload never becomes a visible object.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { ArtifactNotFoundError } from '../../src/artifacts/errors.ts';
import { parseS3Url, S3ArtifactStore } from '../../src/artifacts/s3.ts';
import type { S3ArtifactStoreOptions } from '../../src/artifacts/s3.ts';
import { artifactStoreContract } from './artifact-store.contract.ts';
import { startS3rver } from './s3rver-harness.ts';
import type { S3rverInstance } from './s3rver-harness.ts';

const BUCKET = 'modelplane-test';
let server: S3rverInstance | undefined;
let counter = 0;

before(async () => {
  server = await startS3rver([BUCKET]);
});
after(async () => {
  await server?.stop();
});

function options(extra: S3ArtifactStoreOptions = {}): S3ArtifactStoreOptions {
  if (!server) throw new Error('s3rver is not running');
  return { endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: server.credentials, ...extra };
}

/** A raw SDK client on the same server, to look at the bucket behind the store's back. */
function rawClient(): S3Client {
  return new S3Client({ ...options(), requestChecksumCalculation: 'WHEN_SUPPORTED' });
}

// Every store gets its own nested prefix in the shared bucket...
artifactStoreContract('s3 (prefix)', {
  create: async (o) => new S3ArtifactStore(`s3://${BUCKET}/runs/t${++counter}`, options({ listPageSize: o?.listPageSize })),
});

// ...or a whole fresh bucket, so keys are used unprefixed.
artifactStoreContract('s3 (bucket root)', {
  create: async (o) => {
    const bucket = `root-${++counter}`;
    const client = rawClient();
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    return new S3ArtifactStore(`s3://${bucket}`, options({ listPageSize: o?.listPageSize }));
  },
});

void describe('S3ArtifactStore', () => {
  void test('parseS3Url normalizes the prefix', () => {
    assert.deepEqual(parseS3Url('s3://b'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Url('s3://b/'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Url('s3://b/x/y'), { bucket: 'b', prefix: 'x/y/' });
    assert.deepEqual(parseS3Url('s3://b/x/y//'), { bucket: 'b', prefix: 'x/y/' });
    assert.throws(() => parseS3Url('s3://'), /bucket/);
    assert.throws(() => parseS3Url('http://b/x'), /s3:\/\//);
    assert.throws(() => parseS3Url('s3://b/../x'), /invalid prefix/);
    assert.throws(() => parseS3Url('s3://b/a//x'), /invalid prefix/);
  });

  void test('rejects bad tuning options', () => {
    assert.throws(() => new S3ArtifactStore('s3://b', { listPageSize: 0 }), RangeError);
    assert.throws(() => new S3ArtifactStore('s3://b', { listPageSize: 1001 }), RangeError);
    assert.throws(() => new S3ArtifactStore('s3://b', { partSize: 1024 }), RangeError);
  });

  void test('list pages through ListObjectsV2 with continuation tokens', async () => {
    const store = new S3ArtifactStore(`s3://${BUCKET}/paging-${++counter}`, options({ listPageSize: 5 }));
    let listCalls = 0;
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command') listCalls++;
        return next(args);
      },
      { step: 'initialize', name: 'countListCalls' },
    );
    try {
      const keys = Array.from({ length: 17 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
      await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
      listCalls = 0;
      assert.deepEqual((await store.list('k/')).map((x) => x.key), keys);
      assert.equal(listCalls, 4, '17 keys in pages of 5');
      listCalls = 0;
      assert.equal(await store.deletePrefix('k/'), 17);
      assert.equal(listCalls, 4);
      assert.deepEqual(await store.list(''), []);
    } finally {
      await store.close();
    }
  });

  void test('objects live under the prefix in the bucket; keys come back relative to it', async () => {
    const prefix = `nested/p${++counter}`;
    const store = new S3ArtifactStore(`s3://${BUCKET}/${prefix}/`, options());
    const whole = new S3ArtifactStore(`s3://${BUCKET}`, options());
    try {
      assert.equal(store.description, `s3://${BUCKET}/${prefix}/`);
      const body = Buffer.from('prefixed content');
      const info = await store.put('models/m.onnx', body);
      // For a single PutObject, S3's ETag is the MD5 of the content (quotes stripped).
      assert.equal(info.etag, createHash('md5').update(body).digest('hex'));
      assert.deepEqual((await store.list('')).map((x) => x.key), ['models/m.onnx']);
      assert.deepEqual((await whole.list(`${prefix}/`)).map((x) => x.key), [`${prefix}/models/m.onnx`]);
      assert.deepEqual(await whole.getBuffer(`${prefix}/models/m.onnx`), body);
    } finally {
      await store.close();
      await whole.close();
    }
  });

  void test('folder markers written by other tools are not listed, but deletePrefix clears them', async () => {
    const prefix = `markers-${++counter}`;
    const store = new S3ArtifactStore(`s3://${BUCKET}/${prefix}`, options());
    const client = rawClient();
    try {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/folder/`, Body: Buffer.alloc(0) }));
      await store.put('folder/real.txt', Buffer.from('real'));
      assert.deepEqual((await store.list('')).map((x) => x.key), ['folder/real.txt']);
      assert.equal(await store.deletePrefix('folder/'), 1);
      const whole = new S3ArtifactStore(`s3://${BUCKET}`, options());
      assert.deepEqual(await whole.list(`${prefix}/`), []);
      await whole.close();
    } finally {
      client.destroy();
      await store.close();
    }
  });

  void test('a missing bucket is an error, not a missing artifact', async () => {
    const store = new S3ArtifactStore('s3://no-such-bucket-here/x', options());
    try {
      await assert.rejects(store.getBuffer('a'), (err: unknown) => {
        assert.ok(!(err instanceof ArtifactNotFoundError));
        assert.equal((err as Error).name, 'NoSuchBucket');
        return true;
      });
    } finally {
      await store.close();
    }
  });

  void test('the checksum switch still talks to the server', async () => {
    const store = new S3ArtifactStore(`s3://${BUCKET}/checks-${++counter}`, options({ requestChecksums: 'when_required' }));
    try {
      await store.put('a', Buffer.from('abc'));
      assert.equal((await store.getBuffer('a')).toString(), 'abc');
      assert.equal(await store.deletePrefix(''), 1);
    } finally {
      await store.close();
    }
  });
});
