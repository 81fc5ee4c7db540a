import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  ColumnTransform,
  FittedModel,
  LinearModel,
  Matrix,
  Preprocessing,
  Tree,
  TreeEnsembleModel,
} from '../../src/ml/types.ts';
import { exportModel, floorToFloat32, treeCoverJson, type ExportOptions } from '../../src/onnx/export.ts';
import { InvalidModelError, parseModel } from '../../src/onnx/model-file.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { maxAbsDiff, runModel } from './helpers.ts';
import { referenceFeatures, referencePredict } from './reference.ts';

/** Deterministic uniform [0, 1) generator (LCG), so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const numeric = (name: string, fill: number, offset: number, scale: number): ColumnTransform => ({
  name,
  kind: 'numeric',
  fill,
  offset,
  scale,
  categories: [],
  oneHot: false,
});
const categorical = (name: string, categories: string[], oneHot: boolean): ColumnTransform => ({
  name,
  kind: 'categorical',
  fill: Number.NaN,
  offset: 0,
  scale: 1,
  categories,
  oneHot,
});

/** Linear models: imputed+scaled, one-hot, scaled, one-hot, imputed-only. 8 features. */
const LINEAR_PRE: Preprocessing = {
  columns: [
    numeric('age', 40, 40, 0.1),
    categorical('colour', ['red', 'green', 'blue'], true),
    numeric('income', 50, 50, 0.05),
    categorical('plan', ['basic', 'pro'], true),
    numeric('score', 0, 0, 1),
  ],
};

/** Trees: missing kept, category code, imputed+scaled, one-hot. 5 features. */
const TREE_PRE: Preprocessing = {
  columns: [
    numeric('age', Number.NaN, 0, 1),
    categorical('colour', ['red', 'green', 'blue'], false),
    numeric('income', 50, 50, 0.05),
    categorical('plan', ['basic', 'pro'], true),
  ],
};

/** Raw rows with missing values, unseen category codes and values sitting on tree thresholds. */
function rawRows(pre: Preprocessing, rows: number, seed: number): Matrix {
  const r = rng(seed);
  const cols = pre.columns.length;
  const values = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    pre.columns.forEach((c, j) => {
      const u = r();
      let v: number;
      if (u < 0.08) v = Number.NaN;
      else if (c.kind === 'categorical') v = u < 0.13 ? c.categories.length + 2 : Math.floor(r() * c.categories.length);
      else if (c.name === 'age') v = u < 0.25 ? [30, 45.5, 0.1, 60][Math.floor(r() * 4)]! : 18 + Math.round(r() * 124) / 2;
      else if (c.name === 'income') v = r() * 120;
      else v = r() * 4 - 2;
      values[i * cols + j] = v;
    });
  }
  return { rows, cols, values };
}

type LeafKind = 'probabilities' | 'scores';

/**
 * A random tree of depth <= `depth` over `nFeatures` features. Thresholds are taken from the
 * actual feature values (so rows land exactly on them), nudged off float32 now and then (0.1-like
 * thresholds), or fixed values; `nanFeature` splits get both missing directions.
 */
function randomTree(
  r: () => number,
  features: { cols: number; values: Float64Array },
  nOutputs: number,
  leaves: LeafKind,
  depth: number,
  rootFeature?: number,
): Tree {
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const missing: number[] = [];
  const value: number[] = [];
  const cover: number[] = [];
  const rows = features.values.length / features.cols;
  const grow = (d: number): number => {
    const id = feature.length;
    feature.push(0);
    threshold.push(0);
    left.push(-1);
    right.push(-1);
    missing.push(0);
    cover.push(1 + Math.floor(r() * 100));
    for (let k = 0; k < nOutputs; k++) value.push(0);
    if (d >= depth || (d > 1 && r() < 0.25)) {
      if (leaves === 'probabilities') {
        const raw = Array.from({ length: nOutputs }, () => r());
        const sum = raw.reduce((a, b) => a + b, 0);
        raw.forEach((p, k) => (value[id * nOutputs + k] = p / sum));
      } else for (let k = 0; k < nOutputs; k++) value[id * nOutputs + k] = r() * 4 - 2;
      return id;
    }
    const f = id === 0 && rootFeature !== undefined ? rootFeature : Math.floor(r() * features.cols);
    let t = features.values[Math.floor(r() * rows) * features.cols + f]!;
    if (Number.isNaN(t)) t = 0.1;
    const u = r();
    if (u < 0.3) t += 1e-9; // not a float32: the exporter must round down, not to nearest
    else if (u < 0.4) t = 0.1;
    feature[id] = f;
    threshold[id] = t;
    missing[id] = r() < 0.5 ? 1 : 0;
    left[id] = grow(d + 1);
    right[id] = grow(d + 1);
    return id;
  };
  grow(0);
  return {
    feature: Int32Array.from(feature),
    threshold: Float64Array.from(threshold),
    left: Int32Array.from(left),
    right: Int32Array.from(right),
    missingGoesLeft: Uint8Array.from(missing),
    value: Float64Array.from(value),
    cover: Float64Array.from(cover),
  };
}

function trees(
  seed: number,
  count: number,
  nOutputs: number,
  leaves: LeafKind,
  rootFeature?: number,
): Tree[] {
  const r = rng(seed);
  const features = referenceFeatures(TREE_PRE, rawRows(TREE_PRE, 200, seed + 1));
  return Array.from({ length: count }, () => randomTree(r, features, nOutputs, leaves, 4, rootFeature));
}

function linear(task: 'classification' | 'regression', nTargets: number, nClasses: number, post: LinearModel['postTransform'], seed: number): LinearModel {
  const r = rng(seed);
  const nFeatures = 8;
  return {
    kind: 'linear',
    task,
    nFeatures,
    nTargets,
    coefficients: Float64Array.from({ length: nTargets * nFeatures }, () => r() * 2 - 1),
    intercepts: Float64Array.from({ length: nTargets }, () => r() - 0.5),
    postTransform: post,
    nClasses,
  };
}

function ensemble(
  task: 'classification' | 'regression',
  t: Tree[],
  nOutputs: number,
  nClasses: number,
  aggregate: 'sum' | 'average',
  post: TreeEnsembleModel['postTransform'],
  base: number[],
): TreeEnsembleModel {
  return { kind: 'trees', task, nFeatures: 5, nOutputs, nClasses, trees: t, baseValues: Float64Array.from(base), aggregate, postTransform: post };
}

/**
 * Exports, registers the bytes through prepareForServing, runs them in onnxruntime and compares
 * with the reference evaluator.
 */
async function checkAgainstReference(model: FittedModel, pre: Preprocessing, labels: (number | string)[] | null, options: ExportOptions = {}): Promise<void> {
  const names = pre.columns.map((c) => c.name);
  const bytes = exportModel(model, pre, { featureNames: names, classLabels: labels, producerVersion: '0.1.0', metadata: { run_id: 'r1' } }, options);

  const prepared = prepareForServing(bytes);
  assert.equal(prepared.bytes, bytes, 'an exported model needs no rewrite');
  const sig = prepared.signature;
  assert.deepEqual(sig.featureNames, names);
  assert.deepEqual(sig.featureTypes, pre.columns.map((c) => c.kind));
  assert.deepEqual(sig.categories, { colour: ['red', 'green', 'blue'], plan: ['basic', 'pro'] });
  assert.equal(sig.task, model.task);
  assert.deepEqual(sig.classLabels, labels);
  assert.equal(sig.input.name, 'input');
  assert.equal(sig.input.fixedBatch, null);
  assert.equal(prepared.info.producerName, 'modelplane');
  assert.equal(prepared.info.metadata.run_id, 'r1');

  const raw = rawRows(pre, 400, 99);
  const ref = referencePredict(model, pre, raw);
  const out = await runModel(bytes, 'input', Float32Array.from(raw.values), raw.rows, raw.cols, null);
  if (model.task === 'regression') {
    assert.deepEqual(sig.outputs, { value: 'variable' });
    assert.deepEqual(out.variable!.dims, [raw.rows, 1]);
    const diff = maxAbsDiff(out.variable!.data, ref.values!);
    assert.ok(diff < 1e-5, `values differ by ${diff}`);
    return;
  }
  assert.deepEqual(sig.outputs, { label: 'label', probabilities: 'probabilities' });
  assert.equal(sig.labelType, typeof labels![0] === 'string' ? 'string' : 'int64');
  const c = labels!.length;
  assert.deepEqual(out.probabilities!.dims, [raw.rows, c]);
  const diff = maxAbsDiff(out.probabilities!.data, ref.probabilities!);
  assert.ok(diff < 1e-5, `probabilities differ by ${diff}`);
  const got = out.label!.data;
  for (let i = 0; i < raw.rows; i++) {
    const row = ref.probabilities!.subarray(i * c, (i + 1) * c);
    const best = row[ref.classIndex![i]!]!;
    // Near-ties may resolve either way in float32; otherwise the label is the reference argmax.
    const allowed = labels!.filter((_, k) => best - row[k]! < 1e-6);
    assert.ok(allowed.includes(got[i]!), `row ${i}: label ${String(got[i])}, expected one of ${allowed.join(',')}`);
  }
}

void describe('exportModel: linear', () => {
  void test('binary logistic gives [1 - p, p]', async () => {
    await checkAgainstReference(linear('classification', 1, 2, 'logistic', 1), LINEAR_PRE, [0, 1]);
  });
  void test('multinomial softmax with string labels', async () => {
    await checkAgainstReference(linear('classification', 3, 3, 'softmax', 2), LINEAR_PRE, ['low', 'mid', 'high']);
  });
  void test('regression', async () => {
    await checkAgainstReference(linear('regression', 1, 0, 'none', 3), LINEAR_PRE, null);
  });
});

void describe('exportModel: trees', () => {
  void test('single tree with NaN-routed splits', async () => {
    const t = trees(10, 1, 2, 'probabilities', 0);
    assert.equal(t[0]!.feature[0], 0, 'root splits on the feature that keeps NaN');
    await checkAgainstReference(ensemble('classification', t, 2, 2, 'average', 'none', [0, 0]), TREE_PRE, [0, 1]);
  });
  void test('3-class forest averages leaf probabilities', async () => {
    const t = trees(20, 5, 3, 'probabilities', 0);
    await checkAgainstReference(ensemble('classification', t, 3, 3, 'average', 'none', [0, 0, 0]), TREE_PRE, ['setosa', 'versicolor', 'virginica']);
  });
  void test('binary boosting (one logit output)', async () => {
    const t = trees(30, 4, 1, 'scores');
    await checkAgainstReference(ensemble('classification', t, 1, 2, 'sum', 'logistic', [-0.3]), TREE_PRE, [3, 7]);
  });
  void test('multiclass boosting (softmax)', async () => {
    const t = trees(40, 3, 3, 'scores');
    await checkAgainstReference(ensemble('classification', t, 3, 3, 'sum', 'softmax', [0.1, -0.2, 0]), TREE_PRE, [0, 1, 2]);
  });
  void test('regressor', async () => {
    const t = trees(50, 3, 1, 'scores', 0);
    await checkAgainstReference(ensemble('regression', t, 1, 0, 'sum', 'none', [1.5]), TREE_PRE, null);
  });

  void test('cover is kept exactly as JSON', () => {
    const t = trees(60, 2, 1, 'scores');
    const model = ensemble('regression', t, 1, 0, 'sum', 'none', [0]);
    assert.deepEqual(JSON.parse(treeCoverJson(model)), { trees: t.map((tr) => Array.from(tr.cover)) });
  });
});

void describe('exportModel: checks', () => {
  const names = LINEAR_PRE.columns.map((c) => c.name);
  const bad = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (err: unknown) => err instanceof InvalidModelError && pattern.test(err.reason));
  };
  void test('refuses inconsistent inputs', () => {
    const m = linear('classification', 1, 2, 'logistic', 1);
    bad(() => exportModel(m, LINEAR_PRE, { featureNames: names.slice(1), classLabels: [0, 1], producerVersion: 'x' }), /feature names/);
    bad(() => exportModel(m, TREE_PRE, { featureNames: TREE_PRE.columns.map((c) => c.name), classLabels: [0, 1], producerVersion: 'x' }), /yields 5 features/);
    bad(() => exportModel(m, LINEAR_PRE, { featureNames: names, classLabels: [0, 1, 2], producerVersion: 'x' }), /3 class labels/);
    bad(() => exportModel(m, LINEAR_PRE, { featureNames: names, classLabels: null, producerVersion: 'x' }), /needs its class labels/);
    bad(() => exportModel(m, LINEAR_PRE, { featureNames: names, classLabels: [0.5, 1], producerVersion: 'x' }), /integers/);
    bad(() => exportModel(m, LINEAR_PRE, { featureNames: names, classLabels: [0, 'b'], producerVersion: 'x' }), /all numbers or all strings/);
  });
});

void describe('floorToFloat32', () => {
  void test('rounds down to a float32 so float32 comparisons agree with float64 ones', () => {
    for (const x of [0.1, -0.1, 1 / 3, -1 / 3, 1e-50, -1e-50, 3.4e38 * 1.5, 0, 2.5, 1e-9 + 45.5]) {
      const f = floorToFloat32(x);
      assert.equal(Math.fround(f), f);
      assert.ok(f <= x, `${f} <= ${x}`);
      // The next float32 above f is above x.
      const up = new Float32Array([f]);
      const bits = new Int32Array(up.buffer);
      if (f >= 0) bits[0] = bits[0]! + 1;
      else bits[0] = bits[0]! - 1;
      if (Number.isFinite(up[0]!) && f !== 0) assert.ok(up[0]! > x, `${up[0]} > ${x}`);
    }
  });
});

void describe('exportModel: large ensembles', () => {
  const treeOperators = (bytes: Uint8Array): string[] =>
    (parseModel(bytes).graph?.node ?? []).filter((n) => n.domain === 'ai.onnx.ml' || n.opType === 'Sum').map((n) => n.opType ?? '');

  void test('trees beyond one operator\'s node budget are split into TreeEnsemble operators whose scores are summed', async () => {
    const t = trees(70, 6, 3, 'probabilities', 0);
    const model = ensemble('classification', t, 3, 3, 'average', 'none', [0, 0, 0]);
    const budget = Math.max(...t.map((tree) => tree.left.length)) * 2;
    const meta = { featureNames: TREE_PRE.columns.map((c) => c.name), classLabels: ['a', 'b', 'c'], producerVersion: '0.1.0' };
    const ops = treeOperators(exportModel(model, TREE_PRE, meta, { maxNodesPerTreeOperator: budget }));
    assert.ok(ops.filter((o) => o === 'TreeEnsemble').length >= 3, `operators: ${ops.join(', ')}`);
    assert.equal(ops.at(-1), 'Sum');
    assert.deepEqual(treeOperators(exportModel(model, TREE_PRE, meta)), ['TreeEnsemble'], 'a small ensemble stays one operator');
    await checkAgainstReference(model, TREE_PRE, ['setosa', 'versicolor', 'virginica'], { maxNodesPerTreeOperator: budget });
  });

  void test('a split regressor keeps its base value', async () => {
    const t = trees(80, 5, 1, 'scores', 0);
    // A budget below every tree's size puts each tree in an operator of its own.
    await checkAgainstReference(ensemble('regression', t, 1, 0, 'sum', 'none', [1.5]), TREE_PRE, null, { maxNodesPerTreeOperator: 1 });
  });
});
