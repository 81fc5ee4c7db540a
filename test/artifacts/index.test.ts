import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';

import { createArtifactStore, LocalArtifactStore } from '../../src/artifacts/index.ts';
import { S3ArtifactStore } from '../../src/artifacts/s3.ts';

void describe('createArtifactStore', () => {
  void test('no root means <dataDir>/artifacts', async () => {
    for (const root of [undefined, '', '  ']) {
      const store = await createArtifactStore(root, '/srv/data');
      assert.ok(store instanceof LocalArtifactStore);
      assert.equal(store.root, path.resolve('/srv/data/artifacts'));
      await store.close();
    }
  });

  void test('plain paths and file:// URLs are local folders', async () => {
    const abs = await createArtifactStore('/var/lib/artifacts', '/data');
    assert.ok(abs instanceof LocalArtifactStore);
    assert.equal(abs.root, '/var/lib/artifacts');
    const rel = await createArtifactStore('data/x', '/data');
    assert.ok(rel instanceof LocalArtifactStore);
    assert.equal(rel.root, path.resolve('data/x'));
    const url = await createArtifactStore(pathToFileURL('/tmp/with space/art').href, '/data');
    assert.ok(url instanceof LocalArtifactStore);
    assert.equal(url.root, '/tmp/with space/art');
    assert.equal(url.description, 'local:/tmp/with space/art');
  });

  void test('s3:// URLs build an S3 store with the given options', async () => {
    const store = await createArtifactStore('s3://bucket/some/prefix', '/data', { endpoint: 'http://127.0.0.1:1', forcePathStyle: true, region: 'eu-west-1' });
    assert.ok(store instanceof S3ArtifactStore);
    assert.equal(store.bucket, 'bucket');
    assert.equal(store.prefix, 'some/prefix/');
    assert.equal(store.description, 's3://bucket/some/prefix/');
    assert.equal(await store.client.config.region(), 'eu-west-1');
    assert.equal(store.client.config.forcePathStyle, true);
    await store.close();
  });

  void test('other schemes are refused', async () => {
    await assert.rejects(() => createArtifactStore('gs://bucket/x', '/data'), /unsupported artifact root scheme "gs:\/\/"/);
    await assert.rejects(() => createArtifactStore('http://host/x', '/data'), /unsupported/);
  });
});
