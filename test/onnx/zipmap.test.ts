import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { inspectModel } from '../../src/onnx/inspect.ts';
import { parseModel, serializeModel } from '../../src/onnx/model-file.ts';
import { removeZipMap } from '../../src/onnx/zipmap.ts';
import { GraphBuilder } from '../../src/onnx/graph-builder.ts';
import { buildModel, linearZipMapExpected, linearZipMapModel, maxAbsDiff, runModel, tensorValue } from './helpers.ts';

const ROWS = new Float32Array([0, 0, 1, 2, -1, 0.5, 3, -2]);

void describe('inspectModel', () => {
  void test('describes a ZipMap classifier', () => {
    const info = inspectModel(linearZipMapModel([0, 1, 2]));
    assert.deepEqual(info.inputs, [{ name: 'x', kind: 'tensor', elementType: 'float32', shape: [null, 2] }]);
    assert.deepEqual(info.outputs[0], { name: 'output_label', kind: 'tensor', elementType: 'int64', shape: [null] });
    assert.deepEqual(info.outputs[1], {
      name: 'output_probability',
      kind: 'sequence',
      elementType: 'float32',
      elementKind: 'map',
      keyType: 'int64',
      shape: null,
    });
    assert.equal(info.hasZipMapOutput, true);
    assert.deepEqual(info.zipMapOutputs, ['output_probability']);
    assert.deepEqual(info.classLabels, [0, 1, 2]);
    assert.equal(info.classLabelSource, 'ZipMap');
    assert.deepEqual(info.classifierOps, ['LinearClassifier']);
    assert.equal(info.fixedBatch, null);
    assert.deepEqual(info.opsets, [
      { domain: '', version: 15 },
      { domain: 'ai.onnx.ml', version: 3 },
    ]);
    assert.equal(info.producerName, 'test');
  });

  void test('reads labels from the classifier when there is no ZipMap, and metadata and fixed batch', () => {
    const m = linearZipMapModel(['a', 'b']);
    const g = m.graph!;
    g.node = g.node!.filter((n) => n.opType !== 'ZipMap');
    g.output = [tensorValue('output_label', 8, [1]), tensorValue('probs', 1, [1, 2])];
    g.input = [tensorValue('x', 1, [1, 2])];
    m.metadataProps = [{ key: 'feature_names', value: '["u","v"]' }];
    const info = inspectModel(m);
    assert.deepEqual(info.classLabels, ['a', 'b']);
    assert.equal(info.classLabelSource, 'LinearClassifier');
    assert.equal(info.hasZipMapOutput, false);
    assert.equal(info.fixedBatch, 1);
    assert.deepEqual(info.metadata, { feature_names: '["u","v"]' });
  });
});

void describe('removeZipMap', () => {
  void test('leaves models without ZipMap untouched', () => {
    const g = new GraphBuilder(['x', 'y']);
    g.node('Identity', ['x'], {}, { output: 'y' });
    const m = buildModel(g, [tensorValue('x', 1, ['N', 2])], [tensorValue('y', 1, ['N', 2])]);
    const r = removeZipMap(m);
    assert.equal(r.changed, false);
    assert.equal(r.model, m);
    assert.equal(r.probabilityOutput, null);
  });

  void test('int64 labels: output becomes a float [N, C] tensor that onnxruntime returns', async () => {
    const original = linearZipMapModel([0, 1, 2]);
    // onnxruntime-node refuses the original graph outright.
    const s = await ort.InferenceSession.create(serializeModel(original));
    await assert.rejects(s.run({ x: new ort.Tensor('float32', ROWS, [4, 2]) }), /[Nn]on[- ]tensor/);
    await s.release();

    const r = removeZipMap(parseModel(serializeModel(original)));
    assert.equal(r.changed, true);
    assert.equal(r.probabilityOutput, 'output_probability');
    assert.equal(r.labelOutput, 'output_label');
    assert.deepEqual(r.classLabels, [0, 1, 2]);
    assert.deepEqual(r.rewrites, [{ output: 'output_probability', source: 'probs', classLabels: [0, 1, 2] }]);
    assert.ok(!r.model.graph!.node!.some((n) => n.opType === 'ZipMap'));
    const info = inspectModel(r.model);
    assert.deepEqual(info.outputs[1], { name: 'output_probability', kind: 'tensor', elementType: 'float32', shape: [null, 3] });
    // The input model is not modified.
    assert.ok(original.graph!.node!.some((n) => n.opType === 'ZipMap'));

    const out = await runModel(serializeModel(r.model), 'x', ROWS, 4, 2, null);
    const expected = [0, 1, 2, 3].flatMap((i) => linearZipMapExpected(3, ROWS[2 * i]!, ROWS[2 * i + 1]!));
    assert.ok(maxAbsDiff(out.output_probability!.data, expected) < 1e-5);
    assert.deepEqual(out.output_probability!.dims, [4, 3]);
    const labels = out.output_label!.data;
    for (let i = 0; i < 4; i++) {
      const row = expected.slice(3 * i, 3 * i + 3);
      assert.equal(labels[i], row.indexOf(Math.max(...row)));
    }
  });

  void test('string labels, fixed batch and a model importing only ai.onnx.ml', async () => {
    const m = linearZipMapModel(['cat', 'dog']);
    m.irVersion = 3;
    m.opsetImport = [{ domain: 'ai.onnx.ml', version: 1 }];
    // Old onnxmltools style: no default-domain node, fixed [1, F] input.
    m.graph!.node = m.graph!.node!.filter((n) => n.opType !== 'Identity');
    m.graph!.node[0]!.output = ['output_label', 'probs'];
    m.graph!.input = [tensorValue('x', 1, [1, 2])];
    const r = removeZipMap(parseModel(serializeModel(m)));
    assert.deepEqual(r.classLabels, ['cat', 'dog']);
    assert.equal(r.labelOutput, 'output_label');
    assert.ok(r.model.opsetImport!.some((o) => (o.domain ?? '') === ''), 'default opset added for Identity');
    assert.deepEqual(inspectModel(r.model).outputs[1]!.shape, [1, 2]);

    const out = await runModel(serializeModel(r.model), 'x', ROWS, 4, 2, 1);
    const expected = [0, 1, 2, 3].flatMap((i) => linearZipMapExpected(2, ROWS[2 * i]!, ROWS[2 * i + 1]!));
    assert.ok(maxAbsDiff(out.output_probability!.data, expected) < 1e-5);
    for (let i = 0; i < 4; i++) {
      assert.equal(out.output_label!.data[i], expected[2 * i + 1]! > expected[2 * i]! ? 'dog' : 'cat');
    }
  });
});
