import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/onnx/graph-builder.ts';
import { InvalidModelError, serializeModel } from '../../src/onnx/model-file.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import type { ModelProto } from '../../src/onnx/proto.ts';
import { inferSignature, type SignatureHints } from '../../src/onnx/signature.ts';
import { buildModel, linearZipMapModel, runModel, tensorValue } from './helpers.ts';

/** A "regressor" `variable = x . w` with input of the given element type and dims. */
function regressor(dims: (number | string | null)[], elemType = 1, metadata?: Record<string, string>): ModelProto {
  const g = new GraphBuilder(['x', 'variable']);
  const f = typeof dims[dims.length - 1] === 'number' ? (dims[dims.length - 1] as number) : 3;
  const w = g.floatConst('w', Array.from({ length: f }, (_, i) => i + 1), [f, 1]);
  g.node('MatMul', ['x', w], {}, { output: 'variable' });
  return buildModel(g, [tensorValue('x', elemType, dims)], [tensorValue('variable', 1, [dims[0] ?? 'N', 1])], {
    ...(metadata ? { metadata } : {}),
  });
}

function invalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidModelError, `expected InvalidModelError, got ${String(err)}`);
    assert.match(err.reason, pattern);
    return true;
  });
}

void describe('inferSignature', () => {
  void test('regression with default feature names', () => {
    const sig = inferSignature(regressor(['N', 3]));
    assert.deepEqual(sig, {
      input: { name: 'x', elementType: 'float32', nFeatures: 3, fixedBatch: null, rank: 2 },
      featureNames: ['f0', 'f1', 'f2'],
      featureTypes: ['numeric', 'numeric', 'numeric'],
      task: 'regression',
      classLabels: null,
      labelType: null,
      outputs: { value: 'variable' },
    });
  });

  void test('a model still holding its ZipMap is described as it will be served', () => {
    const sig = inferSignature(linearZipMapModel([4, 5, 6]));
    assert.equal(sig.task, 'classification');
    assert.deepEqual(sig.classLabels, [4, 5, 6]);
    assert.equal(sig.labelType, 'int64');
    assert.deepEqual(sig.outputs, { label: 'output_label', probabilities: 'output_probability' });
  });

  void test('feature names from hints, then metadata (JSON or comma list)', () => {
    assert.deepEqual(inferSignature(regressor(['N', 2]), { featureNames: ['a', 'b'] }).featureNames, ['a', 'b']);
    assert.deepEqual(
      inferSignature(regressor(['N', 2], 1, { feature_names: '["p", "q"]' })).featureNames,
      ['p', 'q'],
    );
    assert.deepEqual(inferSignature(regressor(['N', 2], 1, { feature_names: 'p, q' })).featureNames, ['p', 'q']);
    // Hints win over metadata.
    assert.deepEqual(
      inferSignature(regressor(['N', 2], 1, { feature_names: 'p,q' }), { featureNames: ['a', 'b'] }).featureNames,
      ['a', 'b'],
    );
  });

  void test('symbolic feature dimension needs names; double input; rank-1 input', () => {
    invalid(() => inferSignature(regressor(['N', 'F'])), /symbolic feature dimension/);
    const named = inferSignature(regressor(['N', 'F']), { featureNames: ['a', 'b', 'c'] });
    assert.equal(named.input.nFeatures, 3);
    assert.equal(inferSignature(regressor(['N', 3], 11)).input.elementType, 'double');
    const single = inferSignature(regressor([3]));
    assert.deepEqual(single.input, { name: 'x', elementType: 'float32', nFeatures: 3, fixedBatch: 1, rank: 1 });
  });

  void test('rejects what the serving adapter cannot feed', () => {
    const two = regressor(['N', 2]);
    two.graph!.input!.push(tensorValue('mask', 1, ['N', 2]));
    invalid(() => inferSignature(two), /2 inputs \('x', 'mask'\).*known limit/);
    invalid(() => inferSignature(regressor(['N', 2], 7)), /element type int64/);
    invalid(() => inferSignature(regressor(['N', 2, 2])), /rank 3/);
  });

  void test('validates hint counts against the model', () => {
    invalid(() => inferSignature(regressor(['N', 3]), { featureNames: ['a', 'b'] }), /2 feature names .* 3 features/);
    invalid(() => inferSignature(regressor(['N', 2], 1, { feature_names: 'a,b,c' })), /lists 3 names/);
    invalid(() => inferSignature(regressor(['N', 2]), { featureNames: ['a', 'a'] }), /appears twice/);
    const clf = prepareForServing(serializeModel(linearZipMapModel([0, 1, 2])));
    assert.equal(clf.signature.classLabels?.length, 3);
    invalid(() => prepareForServing(serializeModel(linearZipMapModel([0, 1, 2])), { classLabels: ['a', 'b'] }), /2 class labels .* 3 classes/);
    invalid(() => prepareForServing(serializeModel(linearZipMapModel([0, 1])), { task: 'regression' }), /is a classifier/);
    invalid(() => inferSignature(regressor(['N', 2]), { classLabels: [0, 1] }), /regression/);
  });

  void test('categorical features need their labels', () => {
    const hints: SignatureHints = {
      featureNames: ['colour', 'size'],
      featureTypes: ['categorical', 'numeric'],
      categories: { colour: ['red', 'green'] },
    };
    const sig = inferSignature(regressor(['N', 2]), hints);
    assert.deepEqual(sig.categories, { colour: ['red', 'green'] });
    invalid(() => inferSignature(regressor(['N', 2]), { ...hints, categories: {} }), /'colour' has no category labels/);
  });

  void test('an output merely named like probabilities does not override the task', () => {
    const m = regressor(['N', 2]);
    m.graph!.node![0]!.output = ['prob_default'];
    m.graph!.output = [tensorValue('prob_default', 1, ['N', 1])];
    assert.equal(inferSignature(m).task, 'regression');
    m.graph!.output = [tensorValue('prob_default', 1, ['N', 2])];
    assert.equal(inferSignature(m).task, 'classification');
    const sig = inferSignature(m, { task: 'regression' });
    assert.deepEqual(sig.outputs, { value: 'prob_default' });
  });

  void test('a hint-declared classifier with one float output (e.g. a torch net)', () => {
    const g = new GraphBuilder(['x', 'scores']);
    g.node('Softmax', ['x'], { axis: { int: 1 } }, { output: 'scores' });
    const m = buildModel(g, [tensorValue('x', 1, ['N', 3])], [tensorValue('scores', 1, ['N', 3])]);
    assert.equal(inferSignature(m).task, 'regression');
    const sig = inferSignature(m, { task: 'classification', classLabels: ['a', 'b', 'c'] });
    assert.equal(sig.task, 'classification');
    assert.deepEqual(sig.outputs, { probabilities: 'scores' });
    assert.deepEqual(sig.classLabels, ['a', 'b', 'c']);
    assert.equal(sig.labelType, 'string');
    invalid(() => inferSignature(m, { task: 'classification', classLabels: ['a', 'b'] }), /2 class labels .* 3 classes/);
    assert.deepEqual(inferSignature(m, { task: 'classification' }).classLabels, [0, 1, 2]);
  });
});

void describe('prepareForServing', () => {
  void test('ZipMap classifier: rewritten bytes, signature and info', async () => {
    const bytes = serializeModel(linearZipMapModel(['x', 'y', 'z']));
    const p = prepareForServing(bytes, { featureNames: ['height', 'width'] });
    assert.notEqual(p.bytes, bytes);
    assert.deepEqual(p.signature, {
      input: { name: 'x', elementType: 'float32', nFeatures: 2, fixedBatch: null, rank: 2 },
      featureNames: ['height', 'width'],
      featureTypes: ['numeric', 'numeric'],
      task: 'classification',
      classLabels: ['x', 'y', 'z'],
      labelType: 'string',
      outputs: { label: 'output_label', probabilities: 'output_probability' },
    });
    assert.equal(p.info.hasZipMapOutput, false);
    assert.equal(p.info.rewrites.length, 1);
    assert.match(p.info.rewrites[0]!, /ZipMap replaced/);
    const out = await runModel(p.bytes, 'x', new Float32Array([1, 2]), 1, 2, null);
    assert.deepEqual(out.output_probability!.dims, [1, 3]);
  });

  void test('class label hints that rename classes drop the label output', () => {
    const p = prepareForServing(serializeModel(linearZipMapModel([0, 1])), { classLabels: ['no', 'yes'] });
    assert.deepEqual(p.signature.classLabels, ['no', 'yes']);
    assert.deepEqual(p.signature.outputs, { probabilities: 'output_probability' });
    assert.equal(p.signature.labelType, 'string');
    // Same labels as the model: the label output stays.
    const same = prepareForServing(serializeModel(linearZipMapModel([0, 1])), { classLabels: [0, 1] });
    assert.equal(same.signature.outputs.label, 'output_label');
  });

  void test('refuses garbage with an InvalidModelError', () => {
    invalid(() => prepareForServing(new TextEncoder().encode('{"not": "onnx"}')), /not an ONNX|no ir_version|no graph/);
  });
});
