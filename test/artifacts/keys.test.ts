import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { InvalidArtifactKeyError } from '../../src/artifacts/errors.ts';
import { compareKeys, validateKey, validatePrefix } from '../../src/artifacts/keys.ts';

void describe('validateKey', () => {
  void test('accepts ordinary relative keys and returns them unchanged', () => {
    for (const key of ['a', 'models/m/1/model.onnx', 'a.b/c-d_e', '..x/y', 'x/..y', '.hidden', 'ü/😀', 'k'.repeat(255)]) {
      assert.equal(validateKey(key), key);
    }
    // 1024 bytes exactly is still fine; one byte more is not.
    const max = ['a'.repeat(255), 'b'.repeat(255), 'c'.repeat(255), 'd'.repeat(254), 'e'].join('/');
    assert.equal(Buffer.byteLength(max), 1024);
    assert.equal(validateKey(max), max);
    assert.throws(() => validateKey(max + 'e'), /longer than 1024/);
    assert.throws(() => validateKey(`x/${'s'.repeat(256)}`), /segment longer than 255/);
  });

  const refused: [string, RegExp][] = [
    ['', /empty/],
    ['/abs', /absolute/],
    ['../x', /"\.\."/],
    ['a/..', /"\.\."/],
    ['a/./b', /"\."/],
    ['a//b', /empty segment/],
    ['a/', /empty segment/],
    ['a\\b', /backslash/],
    ['a\0b', /NUL/],
    ['x'.repeat(1025), /1024/],
    ['é'.repeat(513), /1024/],
    ['a/b.modelplane-tmp', /reserved/],
  ];
  for (const [key, reason] of refused) {
    void test(`refuses ${JSON.stringify(key.length > 40 ? key.slice(0, 20) + '...' : key)}`, () => {
      assert.throws(
        () => validateKey(key),
        (err: unknown) => err instanceof InvalidArtifactKeyError && err.code === 'invalid_artifact_key' && err.key === key && reason.test(err.message),
      );
    });
  }

  void test('refuses non-strings passed from untyped callers', () => {
    assert.throws(() => validateKey(undefined as unknown as string), InvalidArtifactKeyError);
  });
});

void describe('validatePrefix', () => {
  void test('accepts empty, folder and partial prefixes', () => {
    for (const prefix of ['', 'a/', 'a/b', 'a/b/', 'a/..partial', 'a/.', 'a/..']) assert.equal(validatePrefix(prefix), prefix);
  });
  void test('refuses prefixes whose complete segments are invalid', () => {
    for (const prefix of ['/', '/a', '../', '../a', 'a//', 'a/../b', 'a\\', 'x\0', './a']) {
      assert.throws(() => validatePrefix(prefix), InvalidArtifactKeyError, JSON.stringify(prefix));
    }
  });
});

void describe('compareKeys', () => {
  void test('orders like UTF-8 bytes (the S3 listing order)', () => {
    const keys = ['a', 'a/b', 'a-b', 'a.b', 'ab', 'B', '\uFFFD', '\u{1F600}', '\uE000', 'é', 'z', '', 'a/b/c', '\u{10000}'];
    for (let round = 0; round < 20; round++) {
      // Shuffle deterministically, then sort both ways.
      const shuffled = keys.map((k, i) => [((i + 1) * 7919 * (round + 3)) % 101, k] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
      const bytewise = [...shuffled].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual([...shuffled].sort(compareKeys), bytewise);
    }
    assert.ok(compareKeys('\uFFFD', '\u{1F600}') < 0, 'BMP above the surrogates still sorts before astral');
    assert.equal(compareKeys('same', 'same'), 0);
  });
});
