import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitRandomForest } from '../../src/ml/forest.ts';
import type { Preprocessing, TrainingData, TreeEnsembleModel } from '../../src/ml/types.ts';
import { ModelTooLargeError } from '../../src/onnx/errors.ts';
import { exportModel } from '../../src/onnx/export.ts';
import { treeOnnxBytes } from '../../src/onnx/tree-ensemble.ts';
import { createRng } from '../../src/util/random.ts';

const P = 4;

const PRE: Preprocessing = {
  columns: Array.from({ length: P }, (_, j) => ({ name: `x${j}`, kind: 'numeric' as const, fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false })),
};

function data(n: number, task: 'regression' | 'classification', seed: number): TrainingData {
  const rng = createRng(seed);
  const values = Float64Array.from({ length: n * P }, () => rng.normal());
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = values[i * P]! - values[i * P + 1]! + 0.5 * rng.normal();
    y[i] = task === 'regression' ? s : s < -0.5 ? 0 : s < 0.5 ? 1 : 2;
  }
  return { x: { rows: n, cols: P, values }, y, task, nClasses: task === 'regression' ? 0 : 3 };
}

function exported(model: TreeEnsembleModel, options: { maxBytes?: number } = {}): Uint8Array {
  const classLabels = model.task === 'classification' ? [0, 1, 2] : null;
  // A budget below every tree's size puts each tree in an operator of its own, as in a large forest.
  return exportModel(model, PRE, { featureNames: PRE.columns.map((c) => c.name), classLabels, producerVersion: '0.0.0' }, { maxNodesPerTreeOperator: 1, ...options });
}

/** The file's size less its trees': what a model of the same inputs and outputs with one tiny tree weighs, less that tree's estimate. */
function sizeOfTrees(model: TreeEnsembleModel): { estimate: number; actual: number } {
  const estimate = model.trees.reduce((sum, tree) => sum + treeOnnxBytes(tree, model.nOutputs, model.nFeatures), 0);
  const stump = { ...model, trees: [model.trees.reduce((a, b) => (a.left.length <= b.left.length ? a : b))] };
  const base = exported(stump).length - treeOnnxBytes(stump.trees[0]!, model.nOutputs, model.nFeatures);
  return { estimate, actual: exported(model).length - base };
}

void describe('ONNX model size', () => {
  void test('treeOnnxBytes is within 3 % of what fully grown regression trees add to the file', async () => {
    const model = await fitRandomForest(data(3000, 'regression', 1), { n_estimators: 4, seed: 1, n_jobs: 1 });
    assert.ok(model.trees[0]!.left.length > 2000, `fully grown: ${model.trees[0]!.left.length} nodes`);
    const { estimate, actual } = sizeOfTrees(model);
    assert.ok(Math.abs(estimate - actual) / actual < 0.03, `estimate ${estimate}, file ${actual}`);
  });

  void test('treeOnnxBytes counts the copies that impure multi-class leaves need', async () => {
    const model = await fitRandomForest(data(2000, 'classification', 2), { n_estimators: 4, seed: 2, max_depth: 3, n_jobs: 1 });
    const { estimate, actual } = sizeOfTrees(model);
    // Leaves of depth-3 trees on overlapping classes hold two or three nonzero probabilities, so
    // the trees are written more than once; counted once each, they would be well under the file.
    const once = model.trees.reduce((sum, tree) => sum + treeOnnxBytes({ ...tree, value: tree.value.map((_, k) => (k % 3 === 0 ? 1 : 0)) }, 3, P), 0);
    assert.ok(once < 0.8 * actual, `one copy each: ${once}, file ${actual}`);
    assert.ok(Math.abs(estimate - actual) / actual < 0.05, `estimate ${estimate}, file ${actual}`);
  });

  void test('an export over maxBytes fails before it is written, with its exact size', async () => {
    const model = await fitRandomForest(data(500, 'regression', 3), { n_estimators: 3, seed: 3, n_jobs: 1 });
    const size = exported(model).length;
    assert.equal(exported(model, { maxBytes: size }).length, size);
    assert.throws(
      () => exported(model, { maxBytes: size - 1 }),
      (err: unknown) => err instanceof ModelTooLargeError && err.bytes === size && err.limit === size - 1 && err.message.includes(`${size} bytes`),
    );
  });
});
