/**
 * Behaviour every ArtifactStore backend must share. Backend test files call
 * `artifactStoreContract(name, harness)`; each test gets a fresh, empty store from the harness.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';

import type { ArtifactStore } from '../../src/artifacts/artifact-store.ts';
import { ArtifactNotFoundError, InvalidArtifactKeyError } from '../../src/artifacts/errors.ts';

export interface ContractHarness {
  /**
   * A fresh, empty store. `listPageSize` asks backends that page their listings to use pages of
   * that many keys, so pagination is exercised; backends that do not page ignore it.
   */
  create(options?: { listPageSize?: number }): Promise<ArtifactStore>;
}

/** Keys every operation must refuse; each would escape the root or is ambiguous across backends. */
export const INVALID_KEYS: readonly string[] = [
  '',
  '../x',
  'a/../../x',
  '..',
  '/abs',
  '/etc/passwd',
  'a//b',
  'a\\b',
  '..\\x',
  'a/./b',
  'a/',
  'x\0y',
  'k'.repeat(1025),
];

/** Deterministic pseudo-random bytes (xorshift32), so large payloads need no fixture files. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** A stream of `total` pseudo-random bytes in `chunk`-sized pieces, generated lazily. */
function generatedStream(total: number, chunk: number, seed: number, failAfter?: number): Readable {
  return Readable.from(
    (function* () {
      let sent = 0;
      while (sent < total) {
        if (failAfter !== undefined && sent >= failAfter) throw new Error('source failed');
        const n = Math.min(chunk, total - sent);
        yield pseudoRandomBytes(n, seed + sent);
        sent += n;
      }
    })(),
  );
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function withStore(harness: ContractHarness, fn: (store: ArtifactStore) => Promise<void>, options?: { listPageSize?: number }) {
  const store = await harness.create(options);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

function isNotFound(key: string) {
  return (err: unknown) => {
    assert.ok(err instanceof ArtifactNotFoundError, `expected ArtifactNotFoundError, got ${String(err)}`);
    assert.equal(err.code, 'artifact_not_found');
    assert.equal(err.key, key);
    return true;
  };
}

function isInvalidKey(err: unknown): boolean {
  assert.ok(err instanceof InvalidArtifactKeyError, `expected InvalidArtifactKeyError, got ${String(err)}`);
  assert.equal(err.code, 'invalid_artifact_key');
  return true;
}

/** Registers the shared contract tests for one backend. */
export function artifactStoreContract(name: string, harness: ContractHarness): void {
  void describe(`ArtifactStore contract: ${name}`, () => {
    void test('put/get roundtrip of a Buffer, with stat matching the put result', () =>
      withStore(harness, async (store) => {
        const body = Buffer.from('{"hello":"world"}\n');
        const info = await store.put('models/m1/signature.json', body);
        assert.equal(info.key, 'models/m1/signature.json');
        assert.equal(info.size, body.length);
        assert.ok(info.etag.length > 0);
        assert.ok(!info.etag.includes('"'), 'etag carries no quotes');
        assert.ok(info.lastModified instanceof Date && !Number.isNaN(info.lastModified.getTime()));
        assert.deepEqual(await store.getBuffer('models/m1/signature.json'), body);
        assert.deepEqual(await readAll(await store.getStream('models/m1/signature.json')), body);
        assert.deepEqual(await store.stat('models/m1/signature.json'), info);
      }));

    void test('put accepts a plain Uint8Array and an empty body', () =>
      withStore(harness, async (store) => {
        const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
        assert.equal((await store.put('raw.bin', bytes)).size, 6);
        assert.deepEqual(await store.getBuffer('raw.bin'), Buffer.from(bytes));
        const empty = await store.put('empty', Buffer.alloc(0));
        assert.equal(empty.size, 0);
        assert.equal((await store.getBuffer('empty')).length, 0);
        assert.equal((await readAll(await store.getStream('empty'))).length, 0);
      }));

    void test('put of a small stream', () =>
      withStore(harness, async (store) => {
        const info = await store.put('runs/r1/log.txt', Readable.from([Buffer.from('line 1\n'), Buffer.from('line 2\n')]));
        assert.equal(info.size, 14);
        assert.equal((await store.getBuffer('runs/r1/log.txt')).toString(), 'line 1\nline 2\n');
      }));

    void test('put/get of a multi-MB stream keeps every byte', () =>
      withStore(harness, async (store) => {
        // 12 MiB + a bit: more than one multipart part for S3, many write chunks locally.
        const total = 12 * 1024 * 1024 + 12345;
        const expected = Buffer.concat([...(function* () {
          for (let sent = 0; sent < total; sent += 256 * 1024) yield pseudoRandomBytes(Math.min(256 * 1024, total - sent), 7 + sent);
        })()]);
        const info = await store.put('datasets/big/data.bin', generatedStream(total, 256 * 1024, 7));
        assert.equal(info.size, total);
        assert.equal((await store.stat('datasets/big/data.bin'))?.size, total);
        assert.equal(sha256(await readAll(await store.getStream('datasets/big/data.bin'))), sha256(expected));
        assert.equal(sha256(await store.getBuffer('datasets/big/data.bin')), sha256(expected));
      }));

    void test('overwriting replaces the content and changes the etag, even at the same size', () =>
      withStore(harness, async (store) => {
        const first = await store.put('v.txt', Buffer.from('aaaa'));
        const second = await store.put('v.txt', Buffer.from('bbbb'));
        assert.notEqual(second.etag, first.etag);
        assert.equal((await store.getBuffer('v.txt')).toString(), 'bbbb');
        assert.equal((await store.stat('v.txt'))?.etag, second.etag);
        const third = await store.put('v.txt', Readable.from([Buffer.from('cccccc')]));
        assert.notEqual(third.etag, second.etag);
        assert.equal(third.size, 6);
        assert.equal((await store.list('')).length, 1, 'overwrites do not add objects');
      }));

    void test('missing objects: stat is undefined, reads throw ArtifactNotFoundError', () =>
      withStore(harness, async (store) => {
        assert.equal(await store.stat('nope/missing.bin'), undefined);
        await assert.rejects(store.getBuffer('nope/missing.bin'), isNotFound('nope/missing.bin'));
        await assert.rejects(store.getStream('nope/missing.bin'), isNotFound('nope/missing.bin'));
        await store.put('folder/child.txt', Buffer.from('x'));
        // A "folder" is not an object on any backend.
        assert.equal(await store.stat('folder'), undefined);
        await assert.rejects(store.getBuffer('folder'), isNotFound('folder'));
        await assert.rejects(store.getStream('folder'), isNotFound('folder'));
      }));

    void test('list: string-prefix semantics, sorted, keys relative to the root', () =>
      withStore(harness, async (store) => {
        const keys = ['a/b/c.txt', 'a/b.txt', 'a/ba', 'ab', 'a/x/y/z.bin', 'b/1', 'a.txt'];
        for (const [i, key] of keys.entries()) await store.put(key, Buffer.alloc(i + 1, i));
        const sorted = [...keys].sort();
        const all = await store.list('');
        assert.deepEqual(all.map((x) => x.key), sorted);
        assert.deepEqual(all.map((x) => x.size), sorted.map((k) => keys.indexOf(k) + 1));
        assert.deepEqual((await store.list('a/')).map((x) => x.key), ['a/b.txt', 'a/b/c.txt', 'a/ba', 'a/x/y/z.bin']);
        assert.deepEqual((await store.list('a/b')).map((x) => x.key), ['a/b.txt', 'a/b/c.txt', 'a/ba']);
        assert.deepEqual((await store.list('a/b/')).map((x) => x.key), ['a/b/c.txt']);
        assert.deepEqual((await store.list('a')).map((x) => x.key), ['a.txt', 'a/b.txt', 'a/b/c.txt', 'a/ba', 'a/x/y/z.bin', 'ab']);
        assert.deepEqual((await store.list('a/x/y/z.bin')).map((x) => x.key), ['a/x/y/z.bin']);
        assert.deepEqual(await store.list('zzz/'), []);
        assert.deepEqual(await store.list('a/q'), []);
        const one = (await store.list('b/'))[0];
        assert.deepEqual(one, await store.stat('b/1'));
      }));

    void test('list returns every key across many pages', () =>
      withStore(
        harness,
        async (store) => {
          // Same-length, zero-padded names: see the s3rver traversal-order note in s3.test.ts.
          const keys = Array.from({ length: 23 }, (_, i) => `pages/item-${String(i).padStart(3, '0')}.bin`);
          await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
          await store.put('pagesx', Buffer.from('outside the folder'));
          assert.deepEqual((await store.list('pages/')).map((x) => x.key), keys);
          assert.equal((await store.list('')).length, 24);
        },
        { listPageSize: 4 },
      ));

    void test('delete removes one object; deleting an absent key is not an error', () =>
      withStore(harness, async (store) => {
        await store.put('d/one', Buffer.from('1'));
        await store.put('d/two', Buffer.from('2'));
        await store.delete('d/one');
        assert.equal(await store.stat('d/one'), undefined);
        await assert.rejects(store.getBuffer('d/one'), isNotFound('d/one'));
        assert.deepEqual((await store.list('')).map((x) => x.key), ['d/two']);
        await store.delete('d/one');
        await store.delete('never/existed');
        await store.delete('d');
        assert.deepEqual((await store.list('')).map((x) => x.key), ['d/two']);
      }));

    void test('deletePrefix removes exactly the keys under the prefix and counts them', () =>
      withStore(
        harness,
        async (store) => {
          const inside = ['p/a', 'p/b/c', 'p/b/d/e', 'p/f.txt', 'p/g', 'p/h', 'p/i'];
          const outside = ['p2/x', 'px', 'q/p/a'];
          for (const key of [...inside, ...outside]) await store.put(key, Buffer.from(key));
          assert.equal(await store.deletePrefix('p/'), inside.length);
          assert.deepEqual((await store.list('')).map((x) => x.key), [...outside].sort());
          for (const key of inside) assert.equal(await store.stat(key), undefined);
          assert.equal(await store.deletePrefix('p/'), 0);
          assert.equal(await store.deletePrefix('nothing-here/'), 0);
          // A partial-segment prefix matches like a string prefix.
          assert.equal(await store.deletePrefix('p'), 2);
          assert.deepEqual((await store.list('')).map((x) => x.key), ['q/p/a']);
          // After a folder is emptied, the same paths can be written again.
          await store.put('p/b', Buffer.from('now a file'));
          assert.equal((await store.getBuffer('p/b')).toString(), 'now a file');
        },
        { listPageSize: 3 },
      ));

    void test('keys that escape the root or are ambiguous are refused by every operation', () =>
      withStore(harness, async (store) => {
        for (const key of INVALID_KEYS) {
          await assert.rejects(store.put(key, Buffer.from('x')), isInvalidKey, `put ${JSON.stringify(key)}`);
          const body = Readable.from([Buffer.from('x')]);
          await assert.rejects(store.put(key, body), isInvalidKey, `put stream ${JSON.stringify(key)}`);
          assert.ok(body.destroyed, 'a refused stream body is destroyed, not left dangling');
          await assert.rejects(store.getBuffer(key), isInvalidKey, `getBuffer ${JSON.stringify(key)}`);
          await assert.rejects(store.getStream(key), isInvalidKey, `getStream ${JSON.stringify(key)}`);
          await assert.rejects(store.stat(key), isInvalidKey, `stat ${JSON.stringify(key)}`);
          await assert.rejects(store.delete(key), isInvalidKey, `delete ${JSON.stringify(key)}`);
        }
        for (const prefix of ['../', '/abs', 'a//', 'a\\', '../x', 'a/../b/', 'x\0']) {
          await assert.rejects(store.list(prefix), isInvalidKey, `list ${JSON.stringify(prefix)}`);
          await assert.rejects(store.deletePrefix(prefix), isInvalidKey, `deletePrefix ${JSON.stringify(prefix)}`);
        }
        assert.deepEqual(await store.list(''), [], 'nothing was written');
      }));

    void test('unusual but valid keys roundtrip (spaces, unicode, dots in names)', () =>
      withStore(harness, async (store) => {
        const keys = ['with space/file name.txt', 'ünï/cødé.json', '..hidden/x', 'a.b/.c', 'emoji/😀.bin'];
        for (const key of keys) await store.put(key, Buffer.from(key));
        for (const key of keys) assert.equal((await store.getBuffer(key)).toString(), key);
        assert.deepEqual(new Set((await store.list('')).map((x) => x.key)), new Set(keys));
      }));

    void test('a failing stream leaves no object behind and keeps the previous version', () =>
      withStore(harness, async (store) => {
        await assert.rejects(store.put('atomic/new.bin', generatedStream(1024 * 1024, 64 * 1024, 1, 300 * 1024)), /source failed/);
        assert.equal(await store.stat('atomic/new.bin'), undefined);
        assert.deepEqual(await store.list(''), [], 'no partial object or temp file is listed');

        const v1 = await store.put('atomic/model.onnx', Buffer.from('version one'));
        await assert.rejects(store.put('atomic/model.onnx', generatedStream(1024 * 1024, 64 * 1024, 2, 500 * 1024)), /source failed/);
        assert.equal((await store.getBuffer('atomic/model.onnx')).toString(), 'version one');
        assert.deepEqual(await store.list(''), [v1]);
      }));

    void test('a stream failing after several MB (past the first multipart part) leaves nothing', () =>
      withStore(harness, async (store) => {
        await assert.rejects(store.put('atomic/huge.bin', generatedStream(16 * 1024 * 1024, 512 * 1024, 3, 11 * 1024 * 1024)), /source failed/);
        assert.equal(await store.stat('atomic/huge.bin'), undefined);
        assert.deepEqual(await store.list(''), []);
      }));

    void test('concurrent puts of one key leave exactly one complete version', () =>
      withStore(harness, async (store) => {
        const versions = Array.from({ length: 6 }, (_, i) => pseudoRandomBytes(200 * 1024, 100 + i));
        await Promise.all(versions.map((body, i) => store.put('race/obj', i % 2 ? Readable.from([body]) : body)));
        const got = sha256(await store.getBuffer('race/obj'));
        assert.ok(versions.some((v) => sha256(v) === got), 'content is one whole version');
        assert.equal((await store.list('')).length, 1);
      }));
  });
}
