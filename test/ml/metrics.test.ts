import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accuracy,
  classificationReport,
  confusionMatrix,
  logLoss,
  mae,
  mse,
  precisionRecallF1,
  r2,
  regressionReport,
  rmse,
  rocAuc,
} from '../../src/ml/metrics.ts';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

void describe('classification metrics', () => {
  void test('accuracy counts exact matches', () => {
    close(accuracy([0, 1, 2, 1], Float64Array.of(0, 1, 1, 1)), 0.75);
    assert.ok(Number.isNaN(accuracy([], [])));
    assert.throws(() => accuracy([0], [0, 1]), RangeError);
  });

  void test('confusion matrix has truth in rows, predictions in columns', () => {
    assert.deepEqual(confusionMatrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3), [
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 2],
    ]);
  });

  void test('macro precision/recall/F1 with zero_division 0 and a class absent from both', () => {
    // class 0: P 1/1, R 1/2, F1 2/3; class 1: P 1/2, R 1/2, F1 1/2; class 2: predicted once,
    // never true: P 0, R 0/0 -> 0, F1 0; class 3 appears nowhere and is left out of the average.
    const r = precisionRecallF1([0, 0, 1, 1], [0, 1, 1, 2], 4);
    close(r.precisionMacro, 0.5);
    close(r.recallMacro, 1 / 3);
    close(r.f1Macro, 7 / 18);
    assert.deepEqual(Array.from(r.present), [1, 1, 1, 0]);
    assert.deepEqual(Array.from(r.f1).map((v) => Number(v.toFixed(6))), [0.666667, 0.5, 0, 0]);
  });

  void test('ROC AUC without and with ties', () => {
    close(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
    // Tied pair (0.5, 0.5) counts one half: (0.5 + 1 + 1 + 1) / 4.
    close(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]), 0.875);
    close(rocAuc([1, 1, 0, 0], [0.3, 0.3, 0.3, 0.3]), 0.5);
    close(rocAuc([0, 1], [0.9, 0.1]), 0);
    assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.4])));
  });

  void test('log loss averages -ln p(true class) and clips at 1e-15', () => {
    close(logLoss([0, 1], Float64Array.of(0.9, 0.1, 0.2, 0.8), 2), -(Math.log(0.9) + Math.log(0.8)) / 2);
    close(logLoss([1], Float64Array.of(1, 0), 2), -Math.log(1e-15), 1e-9);
    assert.throws(() => logLoss([0], Float64Array.of(1, 0, 0), 2), RangeError);
  });

  void test('classification report holds the logged keys; roc_auc only for binary', () => {
    const proba = Float64Array.of(0.8, 0.2, 0.3, 0.7, 0.6, 0.4, 0.1, 0.9);
    const rep = classificationReport([0, 1, 1, 1], proba, 2);
    assert.deepEqual(Object.keys(rep).sort(), ['accuracy', 'f1_macro', 'log_loss', 'precision_macro', 'recall_macro', 'roc_auc']);
    close(rep.accuracy!, 0.75);
    close(rep.roc_auc!, 1);
    const multi = classificationReport([0, 1, 2], Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1), 3);
    assert.equal(multi.roc_auc, undefined);
    close(multi.f1_macro!, 1);
  });
});

void describe('regression metrics', () => {
  const yTrue = [3, -0.5, 2, 7];
  const yPred = [2.5, 0.0, 2, 8];
  void test('rmse, mae, r2 on the textbook example', () => {
    close(mse(yTrue, yPred), 0.375);
    close(rmse(yTrue, yPred), Math.sqrt(0.375));
    close(mae(yTrue, yPred), 0.5);
    close(r2(yTrue, yPred), 0.9486081370449679);
    assert.deepEqual(Object.keys(regressionReport(yTrue, yPred)), ['rmse', 'mae', 'r2']);
  });

  void test('r2 of a constant target is 1 if perfect, else 0', () => {
    assert.equal(r2([2, 2, 2], [2, 2, 2]), 1);
    assert.equal(r2([2, 2, 2], [2, 2, 3]), 0);
    close(r2([1, 2, 3], [2, 2, 2]), 0);
  });
});
