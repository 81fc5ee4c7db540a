/**
 * Progress and cancellation of the tree trainers: progress is monotonic and ends at 1, and a fit
 * stops when its signal aborts or its progress callback throws (how the training pipeline cancels),
 * on worker threads as well as on the calling thread. Waits are event-driven: each cancellation is
 * triggered from a progress report, never after a sleep.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitRandomForest } from '../../src/ml/forest.ts';
import { fitGradientBoosting } from '../../src/ml/gbdt.ts';
import { createRng } from '../../src/util/random.ts';
import { fitDecisionTree } from '../../src/ml/tree.ts';
import type { TrainingData } from '../../src/ml/types.ts';

function regression(n: number, p: number, seed: number): TrainingData {
  const rng = createRng(seed);
  const values = Float64Array.from({ length: n * p }, () => rng.normal());
  const y = Float64Array.from({ length: n }, (_, i) => values[i * p]! * 3 + Math.sin(values[i * p + 1]!) + 0.5 * rng.normal());
  return { x: { rows: n, cols: p, values }, y, task: 'regression', nClasses: 0 };
}

function assertMonotonic(fractions: readonly number[]): void {
  for (let k = 1; k < fractions.length; k++) assert.ok(fractions[k]! >= fractions[k - 1]!, `progress went back: ${fractions.join(', ')}`);
  assert.equal(fractions.at(-1), 1);
}

class Stop extends Error {}

void describe('trainer progress and cancellation', { timeout: 120_000 }, () => {
  const data = regression(2000, 6, 1);

  void test('forest on workers: progress is monotonic and ends at 1', async () => {
    const fractions: number[] = [];
    await fitRandomForest(data, { n_estimators: 16, n_jobs: 2, parallel_threshold: 0 }, (f) => fractions.push(f));
    assertMonotonic(fractions);
  });

  void test('forest on workers stops when the signal aborts', async () => {
    const controller = new AbortController();
    let reports = 0;
    const fit = fitRandomForest(data, { n_estimators: 400, n_jobs: 2, parallel_threshold: 0 }, () => {
      if (++reports === 2) controller.abort(new Stop('cancelled'));
    }, controller.signal);
    await assert.rejects(fit, Stop);
  });

  void test('forest on workers stops when the progress callback throws', async () => {
    let reports = 0;
    const fit = fitRandomForest(data, { n_estimators: 400, n_jobs: 2, parallel_threshold: 0 }, () => {
      if (++reports === 2) throw new Stop('cancelled');
    });
    await assert.rejects(fit, Stop);
  });

  void test('forest on the calling thread stops between trees', async () => {
    const controller = new AbortController();
    const fit = fitRandomForest(data, { n_estimators: 400, n_jobs: 1 }, (f) => {
      if (f > 0) controller.abort(new Stop('cancelled'));
    }, controller.signal);
    await assert.rejects(fit, Stop);
  });

  void test('a large decision tree grows on a worker and can be stopped', async () => {
    const big = regression(40_000, 8, 2);
    const fractions: number[] = [];
    const model = await fitDecisionTree(big, {}, (f) => fractions.push(f));
    assertMonotonic(fractions);
    assert.ok(model.trees[0]!.left.length > 1000, 'a deep tree with thousands of nodes');
    const controller = new AbortController();
    controller.abort(new Stop('cancelled'));
    await assert.rejects(fitDecisionTree(big, {}, undefined, controller.signal), Stop);
  });

  void test('gradient boosting: monotonic progress, and it stops between trees', async () => {
    const fractions: number[] = [];
    await fitGradientBoosting(data, { max_iter: 20 }, (f) => fractions.push(f));
    assertMonotonic(fractions);
    const controller = new AbortController();
    let iterations = 0;
    const fit = fitGradientBoosting(data, { max_iter: 1000, early_stopping: false }, (f) => {
      if (f > 0 && ++iterations === 3) controller.abort(new Stop('cancelled'));
    }, controller.signal);
    await assert.rejects(fit, Stop);
    assert.equal(iterations, 3);
  });
});
