/**
 * Wire-level model editing (`src/onnx/wire.ts`): large attributes set aside before decoding and put
 * back after a rewrite must leave a model that runs exactly like the original.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseModel } from '../../src/onnx/model-file.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { detachLargeAttributes, editGraphNodes, reattachAttributes, varintSize, writeVarint } from '../../src/onnx/wire.ts';
import { maxAbsDiff, runModel, SHARED } from './helpers.ts';

const IRIS_RF = path.join(SHARED, 'onnx-samples', 'iris_rf_skl2onnx-1.11.2.onnx');

void describe('wire: varints', { timeout: 30_000 }, () => {
  void test('sizes and writes match for small and large values', () => {
    for (const v of [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1, 2 ** 35 + 3, 2 ** 52]) {
      const out = new Uint8Array(12);
      assert.equal(writeVarint(out, 0, v), varintSize(v), `value ${v}`);
    }
  });
});

void describe('wire: detaching large attributes', { timeout: 60_000, skip: !existsSync(IRIS_RF) }, () => {
  void test('detach then reattach gives back a model that runs the same', async () => {
    const bytes = new Uint8Array(readFileSync(IRIS_RF));
    const { skeleton, detached } = detachLargeAttributes(bytes, 512);
    assert.ok(detached.size > 0, 'the tree node has large attributes');
    assert.ok(skeleton.length < bytes.length / 4, `skeleton ${skeleton.length} of ${bytes.length} bytes`);
    // The skeleton decodes cheaply and keeps every node.
    assert.equal(parseModel(skeleton).graph?.node?.length, parseModel(bytes).graph?.node?.length);
    const back = reattachAttributes(skeleton, detached);
    assert.equal(back.length, bytes.length);
    // Same nodes with the same attributes (the reattached ones come last in their node).
    const byName = (b: Uint8Array): unknown =>
      (parseModel(b).graph?.node ?? []).map((n) => [...(n.attribute ?? [])].sort((x, y) => (x.name ?? '').localeCompare(y.name ?? '')));
    assert.deepEqual(byName(back), byName(bytes));
  });

  void test('prepareForServing rewrites the ZipMap without decoding the trees', async () => {
    const bytes = new Uint8Array(readFileSync(IRIS_RF));
    const small = prepareForServing(bytes, {}, 512);
    const full = prepareForServing(bytes, {}, Number.MAX_SAFE_INTEGER);
    assert.deepEqual(small.signature, full.signature);
    assert.deepEqual(small.info.rewrites, full.info.rewrites);
    const x = Float32Array.from({ length: 60 }, (_, i) => ((i * 5) % 11) / 1.7);
    const out = small.signature.outputs.probabilities!;
    const a = await runModel(full.bytes, 'float_input', x, 15, 4, null);
    const b = await runModel(small.bytes, 'float_input', x, 15, 4, null);
    assert.equal(maxAbsDiff(b[out]!.data, Float64Array.from(a[out]!.data, Number)), 0);
  });
});

void describe('wire: editGraphNodes', { timeout: 30_000, skip: !existsSync(IRIS_RF) }, () => {
  void test('an edit that keeps every node reproduces the bytes', () => {
    const bytes = new Uint8Array(readFileSync(IRIS_RF));
    assert.deepEqual(editGraphNodes(bytes, () => null), bytes);
    assert.deepEqual(editGraphNodes(bytes, (_, node) => [node]), bytes);
  });
});
