import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import {
  builtinAsCsv,
  isBuiltinDataset,
  listBuiltinDatasets,
  loadBuiltinDataset,
} from '../../src/datasets/builtin.ts';
import { ingestCsv } from '../../src/datasets/csv-ingest.ts';
import { InvalidDatasetParamsError, UnknownBuiltinDatasetError } from '../../src/datasets/errors.ts';
import { numericStats } from '../../src/datasets/schema.ts';
import { getColumn } from '../../src/datasets/table.ts';
import type { Table } from '../../src/datasets/table.ts';

const IRIS_CSV = path.resolve(import.meta.dirname, '../../../shared/datasets/iris.csv');

function numeric(t: Table, name: string): Float64Array {
  const c = getColumn(t, name);
  assert.notEqual(c.type, 'categorical');
  return c.values as Float64Array;
}

/** Accuracy of nearest-class-mean on the training data: a cheap check that classes are separable. */
function nearestMeanAccuracy(t: Table, features: string[], nClasses: number): number {
  const y = numeric(t, 'target');
  const cols = features.map((f) => numeric(t, f));
  const means = Array.from({ length: nClasses }, () => new Float64Array(cols.length));
  const counts = new Float64Array(nClasses);
  for (let i = 0; i < t.rowCount; i++) {
    const k = y[i] ?? 0;
    counts[k] = (counts[k] ?? 0) + 1;
    cols.forEach((c, j) => ((means[k] as Float64Array)[j] = ((means[k] as Float64Array)[j] ?? 0) + (c[i] ?? 0)));
  }
  means.forEach((m, k) => m.forEach((v, j) => (m[j] = v / (counts[k] ?? 1))));
  let correct = 0;
  for (let i = 0; i < t.rowCount; i++) {
    let best = -1;
    let bestD = Infinity;
    means.forEach((m, k) => {
      let d = 0;
      cols.forEach((c, j) => (d += ((c[i] ?? 0) - (m[j] ?? 0)) ** 2));
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    });
    if (best === y[i]) correct++;
  }
  return correct / t.rowCount;
}

void describe('builtin datasets', () => {
  void test('list describes every dataset, and loading matches the listed shape', () => {
    const list = listBuiltinDatasets();
    assert.deepEqual(
      list.map((d) => d.name),
      ['iris', 'synthetic_classification', 'synthetic_regression'],
    );
    for (const d of list) {
      assert.equal(isBuiltinDataset(d.name), true);
      const t = loadBuiltinDataset(d.name);
      assert.equal(t.rowCount, d.rows, d.name);
      assert.equal(t.columns.length, d.columns, d.name);
      assert.ok(getColumn(t, d.target));
    }
    assert.equal(list[1]?.params.n_samples, 1000);
    assert.equal(list[2]?.task, 'regression');
    assert.equal(isBuiltinDataset('toString'), false);
  });

  void test('iris: scikit-learn layout, 50 per class', () => {
    const t = loadBuiltinDataset('iris');
    assert.deepEqual(
      t.columns.map((c) => c.name),
      ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)', 'target'],
    );
    assert.ok(t.columns.every((c) => c.type === 'numeric'));
    const s = numericStats(numeric(t, 'target'));
    assert.deepEqual(s.valueCounts, [
      { value: 0, count: 50 },
      { value: 1, count: 50 },
      { value: 2, count: 50 },
    ]);
    assert.deepEqual(Array.from(numeric(t, 'sepal length (cm)').subarray(0, 3)), [5.1, 4.9, 4.7]);
  });

  void test('iris equals the shared scikit-learn copy', { skip: !existsSync(IRIS_CSV) }, async () => {
    const ref = await ingestCsv(createReadStream(IRIS_CSV));
    const t = loadBuiltinDataset('iris');
    assert.deepEqual(
      t.columns.map((c) => c.name),
      ref.table.columns.map((c) => c.name),
    );
    for (const c of ref.table.columns) {
      assert.deepEqual(Array.from(numeric(t, c.name)), Array.from(c.values as Float64Array), c.name);
    }
  });

  void test('synthetic generators are deterministic per seed and differ across seeds', () => {
    for (const name of ['synthetic_classification', 'synthetic_regression']) {
      const a = loadBuiltinDataset(name, { seed: 7, n_samples: 200 });
      const b = loadBuiltinDataset(name, { seed: 7, n_samples: 200 });
      const c = loadBuiltinDataset(name, { seed: 8, n_samples: 200 });
      assert.deepEqual(a, b, name);
      assert.notDeepEqual(numeric(a, 'feature_0'), numeric(c, 'feature_0'), name);
      assert.equal(builtinAsCsv(name, { seed: 7, n_samples: 200 }), builtinAsCsv(name, { seed: 7, n_samples: 200 }));
    }
  });

  void test('synthetic_classification: balanced, separable classes; parameters respected', () => {
    const t = loadBuiltinDataset('synthetic_classification', { n_classes: 3, n_samples: 900, flip_y: 0, class_sep: 2 });
    assert.equal(t.rowCount, 900);
    assert.equal(t.columns.length, 11);
    const s = numericStats(numeric(t, 'target'));
    assert.deepEqual(s.valueCounts?.map((v) => v.count), [300, 300, 300]);
    const informative = ['feature_0', 'feature_1', 'feature_2', 'feature_3', 'feature_4'];
    assert.ok(nearestMeanAccuracy(t, informative, 3) > 0.8);
    // Noise features alone carry no signal.
    assert.ok(nearestMeanAccuracy(t, ['feature_8', 'feature_9'], 3) < 0.5);
    // Redundant features are combinations of the informative ones, so they carry class signal too.
    assert.ok(nearestMeanAccuracy(t, ['feature_5', 'feature_6'], 3) > 0.5);
  });

  void test('synthetic_regression: target is linear in the informative features plus small noise', () => {
    const t = loadBuiltinDataset('synthetic_regression', { n_samples: 2000, noise: 0 });
    const y = numeric(t, 'target');
    // With no noise and independent standard normal features, y is an exact combination of
    // features 0..4, so their squared correlations with y sum to about 1, while features 5..9
    // (zero weight) are uncorrelated with y up to sampling error (about 1/sqrt(2000)).
    const corr = (x: Float64Array): number => {
      let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
      for (let i = 0; i < x.length; i++) {
        const a = x[i] ?? 0, b = y[i] ?? 0;
        sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
      }
      const n = x.length;
      return (sxy - (sx * sy) / n) / Math.sqrt((sxx - (sx * sx) / n) * (syy - (sy * sy) / n));
    };
    const informative = [0, 1, 2, 3, 4].map((f) => corr(numeric(t, `feature_${f}`)));
    const noise = [5, 6, 7, 8, 9].map((f) => Math.abs(corr(numeric(t, `feature_${f}`))));
    assert.ok(Math.max(...noise) < 0.1, `noise correlations ${noise.join(', ')}`);
    const sumSq = informative.reduce((a, r) => a + r * r, 0);
    assert.ok(sumSq > 0.9 && sumSq < 1.1, `explained ${sumSq}`);
    const noisy = loadBuiltinDataset('synthetic_regression', { n_samples: 2000, noise: 1000 });
    const yStd = numericStats(numeric(noisy, 'target')).std ?? 0;
    assert.ok(yStd > 900, `heavy noise widens the target: std ${yStd}`);
  });

  void test('builtinAsCsv round-trips through ingestCsv', async () => {
    for (const name of ['iris', 'synthetic_regression']) {
      const t = loadBuiltinDataset(name, name === 'iris' ? undefined : { n_samples: 50 });
      const back = await ingestCsv(builtinAsCsv(name, name === 'iris' ? undefined : { n_samples: 50 }));
      assert.deepEqual(back.table.columns.map((c) => [c.name, c.type]), t.columns.map((c) => [c.name, c.type]));
      for (const c of t.columns) assert.deepEqual(Array.from(numeric(back.table, c.name)), Array.from(c.values as Float64Array));
    }
  });

  void test('bad names and parameters are rejected clearly', () => {
    assert.throws(() => loadBuiltinDataset('mnist'), UnknownBuiltinDatasetError);
    assert.throws(() => loadBuiltinDataset('iris', { seed: 1 }), /unknown parameter "seed"/);
    assert.throws(() => loadBuiltinDataset('synthetic_regression', { n_samples: 1.5 }), /n_samples must be an integer/);
    assert.throws(() => loadBuiltinDataset('synthetic_regression', { n_samples: '10' }), InvalidDatasetParamsError);
    assert.throws(() => loadBuiltinDataset('synthetic_regression', { n_samples: 0 }), /between 1 and/);
    assert.throws(
      () => loadBuiltinDataset('synthetic_classification', { n_features: 4 }),
      /n_informative \+ n_redundant \(7\) must not exceed n_features \(4\)/,
    );
    assert.throws(
      () => loadBuiltinDataset('synthetic_classification', { n_informative: 1, n_classes: 3 }),
      /must be at most 2\^n_informative/,
    );
  });
});
