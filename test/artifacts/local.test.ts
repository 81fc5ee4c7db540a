import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { InvalidArtifactKeyError } from '../../src/artifacts/errors.ts';
import { LocalArtifactStore } from '../../src/artifacts/local.ts';
import { artifactStoreContract } from './artifact-store.contract.ts';

let base = '';
let counter = 0;
before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'modelplane-local-artifacts-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A fresh root below the shared temp folder; the store creates it on first use. */
function freshRoot(): string {
  return path.join(base, `store-${++counter}`, 'artifacts');
}

artifactStoreContract('local', { create: async () => new LocalArtifactStore(freshRoot()) });

/** Every path below `dir`, relative, folders with a trailing `/`. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)) + (e.isDirectory() ? '/' : ''))
    .sort();
}

void describe('LocalArtifactStore', () => {
  void test('creates its root on demand and describes itself', async () => {
    const root = freshRoot();
    const store = new LocalArtifactStore(root);
    assert.equal(store.description, `local:${root}`);
    assert.equal(existsSync(root), false);
    assert.deepEqual(await store.list(''), []);
    assert.equal(existsSync(root), true);
  });

  void test('files land at the key path and no temp file remains after puts', async () => {
    const root = freshRoot();
    const store = new LocalArtifactStore(root);
    await store.put('models/m/1/model.onnx', Buffer.from('onnx'));
    await store.put('models/m/1/model.onnx', Readable.from([Buffer.from('onnx v2')]));
    assert.deepEqual(await tree(root), ['models/', 'models/m/', 'models/m/1/', 'models/m/1/model.onnx']);
  });

  void test('a failing stream removes its temp file from disk, not just from list()', async () => {
    const root = freshRoot();
    const store = new LocalArtifactStore(root);
    await store.put('d/keep', Buffer.from('keep'));
    const failing = Readable.from(
      (function* () {
        yield Buffer.alloc(64 * 1024, 1);
        throw new Error('disk source broke');
      })(),
    );
    await assert.rejects(store.put('d/broken', failing), /disk source broke/);
    assert.deepEqual(await tree(root), ['d/', 'd/keep']);
  });

  void test('delete and deletePrefix prune folders left empty, but never the root', async () => {
    const root = freshRoot();
    const store = new LocalArtifactStore(root);
    await store.put('runs/r1/a/b/metrics.json', Buffer.from('{}'));
    await store.put('runs/r1/a/c.txt', Buffer.from('c'));
    await store.put('runs/r2/x', Buffer.from('x'));
    await store.delete('runs/r1/a/b/metrics.json');
    assert.deepEqual(await tree(root), ['runs/', 'runs/r1/', 'runs/r1/a/', 'runs/r1/a/c.txt', 'runs/r2/', 'runs/r2/x']);
    assert.equal(await store.deletePrefix('runs/'), 2);
    assert.deepEqual(await tree(root), []);
    assert.equal(existsSync(root), true);
  });

  void test('a key whose parent is an object, or that names a folder, is refused on put', async () => {
    const store = new LocalArtifactStore(freshRoot());
    await store.put('a', Buffer.from('file'));
    await assert.rejects(store.put('a/b', Buffer.from('x')), InvalidArtifactKeyError);
    await store.put('dir/child', Buffer.from('x'));
    await assert.rejects(store.put('dir', Buffer.from('x')), InvalidArtifactKeyError);
    assert.deepEqual((await store.list('')).map((x) => x.key), ['a', 'dir/child']);
  });

  void test('symlinks leading outside the root are not followed', async () => {
    const root = freshRoot();
    const outside = path.join(base, `outside-${++counter}`);
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'secret.txt'), 'secret');
    const store = new LocalArtifactStore(root);
    await store.put('ok', Buffer.from('ok'));
    await symlink(outside, path.join(root, 'escape'));
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'secret-link'));

    await assert.rejects(store.getBuffer('escape/secret.txt'), InvalidArtifactKeyError);
    await assert.rejects(store.getStream('secret-link'), InvalidArtifactKeyError);
    await assert.rejects(store.stat('escape/secret.txt'), InvalidArtifactKeyError);
    await assert.rejects(store.put('escape/new.txt', Buffer.from('x')), InvalidArtifactKeyError);
    await assert.rejects(store.delete('escape/secret.txt'), InvalidArtifactKeyError);
    assert.deepEqual((await store.list('')).map((x) => x.key), ['ok'], 'symlinks are not listed');
    await assert.rejects(store.list('escape/'), InvalidArtifactKeyError);
    await assert.rejects(store.deletePrefix('escape/'), InvalidArtifactKeyError);
    assert.deepEqual(await readdir(outside), ['secret.txt'], 'nothing was written outside');
  });

  void test('a root that is itself a symlink works (containment uses the real path)', async () => {
    const real = path.join(base, `real-${++counter}`);
    await mkdir(real, { recursive: true });
    const link = path.join(base, `link-${counter}`);
    await symlink(real, link);
    const store = new LocalArtifactStore(link);
    await store.put('x/y', Buffer.from('via link'));
    assert.equal((await store.getBuffer('x/y')).toString(), 'via link');
    assert.deepEqual(await tree(real), ['x/', 'x/y']);
  });

  void test('stale temp files from a crashed writer are never listed', async () => {
    const root = freshRoot();
    const store = new LocalArtifactStore(root);
    await store.put('m/model.onnx', Buffer.from('onnx'));
    await writeFile(path.join(root, 'm', '.deadbeef.modelplane-tmp'), 'half written');
    assert.deepEqual((await store.list('')).map((x) => x.key), ['m/model.onnx']);
    await assert.rejects(store.stat('m/.deadbeef.modelplane-tmp'), InvalidArtifactKeyError);
  });
});
