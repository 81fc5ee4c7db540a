import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { argmaxRows, linearScores, predictClasses, predictLinear, predictScores, predictTrees, treeScores } from '../../src/ml/predict.ts';
import type { LinearModel, Matrix, Tree, TreeEnsembleModel } from '../../src/ml/types.ts';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);
const matrix = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0]?.length ?? 0, values: Float64Array.from(rows.flat()) });

function linear(partial: Partial<LinearModel> & Pick<LinearModel, 'coefficients' | 'intercepts' | 'nTargets'>): LinearModel {
  return { kind: 'linear', task: 'classification', nFeatures: 2, postTransform: 'none', nClasses: 0, ...partial };
}

void describe('predictLinear', () => {
  const x = matrix([
    [1, 2],
    [0, -1],
  ]);

  void test('regression: x w + b', () => {
    const m = linear({ task: 'regression', coefficients: Float64Array.of(2, -1), intercepts: Float64Array.of(0.5), nTargets: 1 });
    assert.deepEqual(Array.from(predictLinear(m, x).values!), [0.5, 1.5]);
    assert.equal(predictLinear(m, x).probabilities, undefined);
  });

  void test('binary logistic expands the positive-class probability to [1 - p, p]', () => {
    const m = linear({ coefficients: Float64Array.of(1, 0), intercepts: Float64Array.of(-1), nTargets: 1, postTransform: 'logistic', nClasses: 2 });
    const p = predictLinear(m, x).probabilities!;
    // logits 0 and -1
    close(p[0]!, 0.5);
    close(p[1]!, 0.5);
    close(p[3]!, 1 / (1 + Math.E));
    close(p[2]! + p[3]!, 1);
    assert.deepEqual(Array.from(predictClasses({ probabilities: p }, 2)), [0, 0]);
  });

  void test('softmax: logits [0, ln 2, ln 3] give [1/6, 2/6, 3/6]', () => {
    const m = linear({
      nFeatures: 1,
      coefficients: Float64Array.of(0, Math.log(2), Math.log(3)),
      intercepts: Float64Array.of(0, 0, 0),
      nTargets: 3,
      postTransform: 'softmax',
      nClasses: 3,
    });
    const p = predictLinear(m, matrix([[1]])).probabilities!;
    [1 / 6, 2 / 6, 3 / 6].forEach((v, i) => close(p[i]!, v));
    assert.deepEqual(Array.from(linearScores(m, matrix([[2]]))).map((v) => Number(v.toFixed(12))), [0, Number((2 * Math.log(2)).toFixed(12)), Number((2 * Math.log(3)).toFixed(12))]);
  });

  void test('rejects inputs with the wrong number of columns', () => {
    const m = linear({ task: 'regression', coefficients: Float64Array.of(2, -1), intercepts: Float64Array.of(0), nTargets: 1 });
    assert.throws(() => predictLinear(m, matrix([[1, 2, 3]])), RangeError);
  });
});

/** Stump on feature `f` at `t`; NaN goes left iff `nanLeft`; leaves hold `lo` / `hi` (one value per output). */
function stump(f: number, t: number, nanLeft: boolean, lo: number[], hi: number[]): Tree {
  const k = lo.length;
  return {
    feature: Int32Array.of(f, -1, -1),
    threshold: Float64Array.of(t, 0, 0),
    left: Int32Array.of(1, -1, -1),
    right: Int32Array.of(2, -1, -1),
    missingGoesLeft: Uint8Array.of(nanLeft ? 1 : 0, 0, 0),
    value: Float64Array.from([...new Array<number>(k).fill(0), ...lo, ...hi]),
    cover: Float64Array.of(2, 1, 1),
  };
}

/** Depth-2 tree: root on x0 <= 0.5; left child on x1 <= 10 (NaN right); right child is a leaf. */
function deeper(): Tree {
  return {
    feature: Int32Array.of(0, 1, -1, -1, -1),
    threshold: Float64Array.of(0.5, 10, 0, 0, 0),
    left: Int32Array.of(1, 3, -1, -1, -1),
    right: Int32Array.of(2, 4, -1, -1, -1),
    missingGoesLeft: Uint8Array.of(1, 0, 0, 0, 0),
    value: Float64Array.of(0, 0, 100, 1, 2),
    cover: Float64Array.of(3, 2, 1, 1, 1),
  };
}

function ensemble(partial: Partial<TreeEnsembleModel> & Pick<TreeEnsembleModel, 'trees'>): TreeEnsembleModel {
  return {
    kind: 'trees',
    task: 'regression',
    nFeatures: 2,
    nOutputs: 1,
    nClasses: 0,
    baseValues: Float64Array.of(0),
    aggregate: 'sum',
    postTransform: 'none',
    ...partial,
  };
}

void describe('predictTrees', () => {
  const x = matrix([
    [0.5, 3], // x0 <= 0.5 (equality goes left), x1 <= 10 -> leaf 3
    [0.2, Number.NaN], // left, then NaN goes right -> leaf 4
    [Number.NaN, 50], // NaN at the root goes left, 50 > 10 -> leaf 4
    [0.9, 0], // right -> leaf 2
  ]);

  void test('walks thresholds and routes NaN by missingGoesLeft', () => {
    const m = ensemble({ trees: [deeper()] });
    assert.deepEqual(Array.from(predictTrees(m, x).values!), [1, 2, 2, 100]);
  });

  void test('sum adds base values; average divides the leaf sum by the tree count before adding them', () => {
    const trees = [deeper(), stump(1, 5, false, [10], [20])];
    // stump: x1 = 3 -> 10, NaN -> right 20, 50 -> 20, 0 -> 10
    const summed = ensemble({ trees, baseValues: Float64Array.of(0.5) });
    assert.deepEqual(Array.from(treeScores(summed, x)), [11.5, 22.5, 22.5, 110.5]);
    const averaged = ensemble({ trees, baseValues: Float64Array.of(0.5), aggregate: 'average' });
    assert.deepEqual(Array.from(predictScores(averaged, x).values!), [6, 11.5, 11.5, 55.5]);
  });

  void test('binary boosting: one logit output through the logistic expands to two probabilities', () => {
    const m = ensemble({
      task: 'classification',
      nClasses: 2,
      trees: [stump(0, 0.5, true, [-1], [1]), stump(0, 0.5, true, [-0.5], [0.5])],
      baseValues: Float64Array.of(0.5),
      postTransform: 'logistic',
    });
    const p = predictScores(m, x).probabilities!;
    const sig = (z: number): number => 1 / (1 + Math.exp(-z));
    close(p[1]!, sig(-1)); // row 0 goes left twice: 0.5 - 1 - 0.5
    close(p[0]!, 1 - sig(-1));
    close(p[7]!, sig(2)); // row 3 goes right twice
  });

  void test('multiclass boosting with softmax, forests with averaged class probabilities', () => {
    const boosted = ensemble({
      task: 'classification',
      nOutputs: 3,
      nClasses: 3,
      trees: [stump(0, 0.5, true, [0, Math.log(2), Math.log(3)], [Math.log(3), 0, 0])],
      baseValues: Float64Array.of(0, 0, 0),
      postTransform: 'softmax',
    });
    const p = predictScores(boosted, x).probabilities!;
    [1 / 6, 2 / 6, 3 / 6].forEach((v, i) => close(p[i]!, v));
    [3 / 5, 1 / 5, 1 / 5].forEach((v, i) => close(p[9 + i]!, v));

    const forest = ensemble({
      task: 'classification',
      nOutputs: 2,
      nClasses: 2,
      trees: [stump(0, 0.5, false, [1, 0], [0, 1]), stump(1, 5, false, [0.5, 0.5], [0, 1])],
      baseValues: Float64Array.of(0, 0),
      aggregate: 'average',
    });
    const q = predictScores(forest, x).probabilities!;
    // row 2: NaN goes right in tree 1 ([0, 1]), 50 > 5 right in tree 2 ([0, 1])
    assert.deepEqual(Array.from(q), [0.75, 0.25, 0.5, 0.5, 0, 1, 0.25, 0.75]);
  });
});

void describe('argmaxRows', () => {
  void test('first maximum wins ties', () => {
    assert.deepEqual(Array.from(argmaxRows(Float64Array.of(0.5, 0.5, 0.2, 0.8, 1, 0), 2)), [0, 1, 0]);
  });
});
