/**
 * `?explain=true`: Shapley contributions against a background drawn from the training reference.
 * Unit checks on the explainer with real ONNX models (linear: closed form; trees: efficiency on
 * the exact and the sampling path), then the routes against the real registry on every store backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fitGradientBoosting } from '../../src/ml/gbdt.ts';
import { createRng } from '../../src/util/random.ts';
import type { Matrix, Preprocessing, Task } from '../../src/ml/types.ts';
import { exportModel } from '../../src/onnx/export.ts';
import { parseModel, serializeModel } from '../../src/onnx/model-file.ts';
import { BACKGROUND_ROWS, EXACT_MAX_FEATURES, Explainer, MAX_EXPLAIN_ROWS } from '../../src/serving/explain.ts';
import { LoadedModel } from '../../src/serving/loaded-model.ts';
import { BatchPredictionSchema, SinglePredictionSchema } from '../../src/serving/serving.schemas.ts';
import { buildReference, type TrainingReference } from '../../src/training/pipeline-reference.ts';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import { buildServingApp, categoricalRegressor, linearClassifier, linearRegressor, type ServingTestApp } from './harness.ts';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const names = (n: number): string[] => Array.from({ length: n }, (_, j) => `f${j}`);

function numericPre(cols: readonly string[]): Preprocessing {
  return { columns: cols.map((name) => ({ name, kind: 'numeric' as const, fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false })) };
}

/** `rows` rows of `cols` standard normal features (seeded). */
function gaussianRows(rows: number, cols: number, seed: number): Matrix {
  const rng = createRng(seed);
  const values = new Float64Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return { rows, cols, values };
}

/** The real reference format, computed by the training pipeline's own function. */
function referenceOf(cols: readonly string[], x: Matrix, task: Task, y: Float64Array): TrainingReference {
  return buildReference(numericPre(cols), x, { name: 'target', task, values: y, classLabels: task === 'classification' ? [0, 1] : null }, { name: 'synthetic', version: 1, sha256: '0'.repeat(64) });
}

/**
 * A gradient-boosted model over `f` features with interactions (products of neighbours), so
 * Shapley values are not just per-feature effects; with its training reference.
 */
async function boostedTrees(f: number, task: Task): Promise<{ bytes: Uint8Array; reference: TrainingReference; x: Matrix }> {
  const x = gaussianRows(400, f, f * 7 + (task === 'classification' ? 1 : 0));
  const y = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let s = 0;
    for (let j = 0; j < f; j++) s += (j + 1) * 0.3 * x.values[i * f + j]! + x.values[i * f + j]! * x.values[i * f + ((j + 1) % f)]!;
    y[i] = task === 'classification' ? (s > 0 ? 1 : 0) : s;
  }
  const model = await fitGradientBoosting({ x, y, task, nClasses: task === 'classification' ? 2 : 0 }, { max_iter: 15, max_leaf_nodes: 8, min_samples_leaf: 5 });
  const cols = names(f);
  const bytes = exportModel(model, numericPre(cols), { featureNames: cols, classLabels: task === 'classification' ? [0, 1] : null, producerVersion: 'test' });
  return { bytes, reference: referenceOf(cols, x, task, y), x };
}

/** A classifier whose ONNX graph only outputs labels (no probabilities). */
function labelsOnlyClassifier(): Uint8Array {
  const m = parseModel(linearClassifier(['a', 'b'], ['no', 'yes'], [[1, -1]]));
  m.graph!.output = m.graph!.output!.filter((o) => o.name !== 'probabilities');
  return serializeModel(m);
}

function sum(a: ArrayLike<number>, from = 0, to = a.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i]!;
  return s;
}

/** Relative closeness, with an absolute floor for values near zero. */
function assertClose(actual: number, expected: number, rel: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${message ?? ''} ${actual} vs ${expected}`);
}

/** The explained output of row `i`: the value, or the probability of the predicted class. */
function explained(out: { probabilities: ArrayLike<number> | null; values: ArrayLike<number> | null; width: number }, i: number): number {
  if (out.probabilities === null) return out.values![i]!;
  let best = -Infinity;
  for (let c = 0; c < out.width; c++) best = Math.max(best, out.probabilities[i * out.width + c]!);
  return best;
}

const LINEAR_COEF = [2, -3, 0.5];
const LINEAR_X = gaussianRows(300, 3, 11);
const WIDE = await boostedTrees(EXACT_MAX_FEATURES + 4, 'regression');
const NARROW = await boostedTrees(6, 'regression');
const WIDE_CLASSIFIER = await boostedTrees(EXACT_MAX_FEATURES + 2, 'classification');
const NARROW_CLASSIFIER = await boostedTrees(5, 'classification');

void describe('Shapley explainer', () => {
  let t: ServingTestApp;
  before(async () => {
    t = await buildServingApp({
      // The explainer is called directly, without the routes' in-flight count: keep idle models loaded.
      serving: { idleReleaseMs: 600_000 },
      seed: async (r) => {
        await r.register('linear', linearRegressor(['a', 'b', 'c'], LINEAR_COEF, 4));
        await r.register('colours', categoricalRegressor());
        await r.register('wide', WIDE.bytes);
        await r.register('narrow', NARROW.bytes);
        await r.register('wide-clf', WIDE_CLASSIFIER.bytes);
        await r.register('narrow-clf', NARROW_CLASSIFIER.bytes);
      },
    });
  });
  after(() => t.close());

  const model = async (name: string): Promise<LoadedModel> => {
    const m = await t.serving.service.pick({ model: name, version: 1 });
    assert.ok(m instanceof LoadedModel);
    return m;
  };

  const rowsOf = (m: LoadedModel, values: readonly number[]) => {
    const input = m.allocRows(values.length / m.nFeatures);
    input.set(values);
    return input;
  };

  test('a linear model: exact Shapley values are coef * (x - background mean)', async () => {
    const m = await model('linear');
    const reference = referenceOf(['a', 'b', 'c'], LINEAR_X, 'regression', new Float64Array(LINEAR_X.rows));
    const explainer = await Explainer.create(m, reference);
    const bg = explainer.backgroundSet;
    assert.equal(bg.length, BACKGROUND_ROWS * 3);
    const mean = [0, 1, 2].map((j) => sum(Array.from({ length: BACKGROUND_ROWS }, (_, k) => bg[k * 3 + j]!)) / BACKGROUND_ROWS);
    // Evenly spaced quantiles of a standard normal sample: mean near 0, spread well beyond a point.
    for (let j = 0; j < 3; j++) {
      assert.ok(Math.abs(mean[j]!) < 0.25, `background mean of feature ${j}: ${mean[j]}`);
      const column = Array.from({ length: BACKGROUND_ROWS }, (_, k) => bg[k * 3 + j]!);
      assert.ok(Math.max(...column) - Math.min(...column) > 2, 'the background spans the distribution');
    }
    const x = [1.5, -2, 3, 0, 0.25, -1];
    const ex = await explainer.explain(rowsOf(m, x), 2);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) assertClose(ex.contributions[i * 3 + j]!, LINEAR_COEF[j]! * (x[i * 3 + j]! - mean[j]!), 1e-5, `row ${i} feature ${j}`);
      assertClose(ex.baseValues[i]!, 4 + sum(LINEAR_COEF.map((c, j) => c * mean[j]!)), 1e-5, 'base value');
    }
  });

  test('categorical features: background categories in proportion to their training frequencies, as model codes', async () => {
    const m = await model('colours');
    const reference = {
      features: {
        colour: { type: 'categorical', frequencies: { red: 8, green: 4, blue: 4, purple: 3 } },
        size: { type: 'numeric', sample: [1, 2, 3, 4] },
      },
    };
    const explainer = await Explainer.create(m, reference);
    const codes = Array.from({ length: BACKGROUND_ROWS }, (_, k) => explainer.backgroundSet[k * 2]!);
    // purple is unknown to the model: dropped; 16 slots split 8:4:4 over red(0), green(1), blue(2).
    assert.deepEqual([0, 1, 2].map((c) => codes.filter((v) => v === c).length), [8, 4, 4]);
    const ex = await explainer.explain(rowsOf(m, [2, 10]), 1); // blue, size 10; y = 10 * code + size
    assertClose(ex.contributions[0]!, 10 * (2 - 0.75), 1e-6, 'colour');
    assertClose(ex.contributions[1]!, 10 - 2.5, 1e-6, 'size');
    assertClose(ex.baseValues[0]!, 10 * 0.75 + 2.5, 1e-6, 'base');
  });

  for (const [name, data, path] of [
    ['narrow', NARROW, 'exact'],
    ['wide', WIDE, 'sampling'],
    ['narrow-clf', NARROW_CLASSIFIER, 'exact'],
    ['wide-clf', WIDE_CLASSIFIER, 'sampling'],
  ] as const) {
    test(`trees (${name}, ${path} path): contributions add up to the explained output minus the base value`, async () => {
      const m = await model(name);
      assert.equal(m.nFeatures > EXACT_MAX_FEATURES, path === 'sampling');
      const explainer = await Explainer.create(m, data.reference);
      const rows = 8;
      const ex = await explainer.explain(rowsOf(m, Array.from(data.x.values.subarray(0, rows * m.nFeatures))), rows);
      const f = m.nFeatures;
      let nonZero = 0;
      for (let i = 0; i < rows; i++) {
        const total = sum(ex.contributions, i * f, (i + 1) * f);
        assertClose(total, explained(ex.outputs, i) - ex.baseValues[i]!, 1e-6, `row ${i}`);
        for (let j = 0; j < f; j++) if (Math.abs(ex.contributions[i * f + j]!) > 1e-9) nonZero++;
        if (m.isClassifier) assert.ok(ex.baseValues[i]! > 0 && ex.baseValues[i]! < 1, 'a class probability');
      }
      assert.ok(nonZero > rows, 'features get credit');
      // Deterministic: a second explainer (fresh background, fresh permutations) gives the same numbers.
      const again = await (await Explainer.create(m, data.reference)).explain(rowsOf(m, Array.from(data.x.values.subarray(0, rows * f))), rows);
      assert.deepEqual(Array.from(again.contributions), Array.from(ex.contributions));
      assert.deepEqual(Array.from(again.baseValues), Array.from(ex.baseValues));
    });
  }

  test('a reference that lacks a feature or contradicts its type is a 400 naming explain', async () => {
    const m = await model('linear');
    await assert.rejects(
      Explainer.create(m, { features: { a: { type: 'numeric', sample: [1] }, b: { type: 'numeric', sample: [1] } } }),
      (err: { status: number; message: string }) => err.status === 400 && /explain/.test(err.message) && /feature 'c'/.test(err.message),
    );
    await assert.rejects(
      Explainer.create(m, { features: { a: { type: 'categorical', frequencies: { x: 1 } }, b: { type: 'numeric', sample: [1] }, c: { type: 'numeric', sample: [1] } } }),
      (err: { status: number; message: string }) => err.status === 400 && /'a' as categorical/.test(err.message),
    );
  });
});

interface Explained {
  prediction: number | string;
  confidence?: number;
  contributions: Record<string, number>;
  base_value: number;
  cached?: boolean;
}

for (const backend of await storeBackends()) {
  void describe(`?explain=true routes (${backend})`, () => {
    let t: TestApp;
    const actor = { keyId: 'test', role: 'admin' as const };
    before(async () => {
      t = await buildTestApp({ backend, env: { MODEL_NAME: 'wide', RATE_LIMIT_PER_MINUTE: '0' } });
      const registry = t.services.registry;
      const wide = await registry.models.registerVersion('wide', WIDE.bytes, {}, { actor: 'test', reference: WIDE.reference });
      await registry.lifecycle.transitionStage('wide', wide.version, 'Production', { actor });
      const staged = await registry.models.registerVersion('wide', NARROW_CLASSIFIER.bytes, {}, { actor: 'test', reference: NARROW_CLASSIFIER.reference });
      await registry.lifecycle.transitionStage('wide', staged.version, 'Staging', { actor });
      await registry.models.registerVersion('clf', WIDE_CLASSIFIER.bytes, {}, { actor: 'test', reference: WIDE_CLASSIFIER.reference });
      await registry.models.registerVersion('plain', linearRegressor(['a', 'b'], [1, 1]), {}, { actor: 'test' });
      await registry.models.registerVersion('labels', labelsOnlyClassifier(), {}, { actor: 'test' });
    });
    after(() => t.close());

    const post = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, payload: payload as object, headers: t.headers('predict') });
    const rowOf = (x: Matrix, i: number): number[] => Array.from(x.values.subarray(i * x.cols, (i + 1) * x.cols));
    const checkRow = (row: Explained, features: readonly string[], regression: boolean): void => {
      assert.deepEqual(Object.keys(row.contributions), features);
      const explainedOutput = regression ? (row.prediction as number) : row.confidence!;
      assertClose(sum(Object.values(row.contributions)), explainedOutput - row.base_value, 1e-6, 'efficiency');
    };

    test('single routes: /predict, /models/{name}/predict and /predict/staging add contributions and base_value', async () => {
      const x = rowOf(WIDE.x, 3);
      const res = await post('/predict?explain=true', { features: x });
      assert.equal(res.statusCode, 200, res.body);
      const j = res.json<Explained>();
      assert.ok(Value.Check(SinglePredictionSchema, j), res.body);
      checkRow(j, names(WIDE.x.cols), true);
      assert.equal(j.cached, false);
      // The same row again: the same numbers (deterministic, and not served from the prediction cache).
      const again = await post('/predict?explain=true', { features: x });
      assert.deepEqual(again.json<Explained>().contributions, j.contributions);
      assert.equal(again.json<Explained>().cached, false);
      const plain = await post('/predict', { features: x });
      assert.equal(plain.json<Explained>().contributions, undefined, 'no explanation unless asked');
      assert.equal(plain.json<Explained>().prediction, j.prediction);

      const named = await post('/models/clf/predict?version=1&explain=true', { features: rowOf(WIDE_CLASSIFIER.x, 0) });
      assert.equal(named.statusCode, 200, named.body);
      assert.ok(Value.Check(SinglePredictionSchema, named.json()), named.body);
      checkRow(named.json<Explained>(), names(WIDE_CLASSIFIER.x.cols), false);

      const staging = await post('/predict/staging?explain=true', { features: rowOf(NARROW_CLASSIFIER.x, 1) });
      assert.equal(staging.statusCode, 200, staging.body);
      checkRow(staging.json<Explained>(), names(NARROW_CLASSIFIER.x.cols), false);
    });

    test('batch routes: every row of /predict/batch and /batch-predict carries its explanation', async () => {
      const records = [0, 1, 2, 3, 4].map((i) => rowOf(WIDE.x, i));
      for (const url of ['/predict/batch?explain=true', '/batch-predict?model=wide&explain=true']) {
        const res = await post(url, { records });
        assert.equal(res.statusCode, 200, res.body);
        const j = res.json<{ predictions: Explained[]; count: number }>();
        assert.ok(Value.Check(BatchPredictionSchema, j), res.body);
        assert.equal(j.count, 5);
        for (const row of j.predictions) checkRow(row, names(WIDE.x.cols), true);
        const single = await post('/predict?explain=true', { features: records[2] });
        assert.deepEqual(j.predictions[2]!.contributions, single.json<Explained>().contributions, 'a row explains the same alone or in a batch');
      }
      const plain = await post('/predict/batch', { records });
      assert.equal(plain.json<{ predictions: Explained[] }>().predictions[0]!.contributions, undefined);
    });

    test('400s: no training reference, too many rows, a labels-only classifier; /invocations ignores explain', async () => {
      const noReference = await post('/predict?model=plain&version=1&explain=true', { a: 1, b: 2 });
      assert.equal(noReference.statusCode, 400, noReference.body);
      assert.match(noReference.json<{ details: string }>().details, /explain.*training reference/);
      assert.equal(noReference.json<{ errors: { path: string }[] }>().errors[0]!.path, '/querystring/explain');
      assert.equal((await post('/predict?model=plain&version=1', { a: 1, b: 2 })).statusCode, 200, 'predictions without explain still work');

      const many = Array.from({ length: MAX_EXPLAIN_ROWS + 1 }, (_, i) => rowOf(WIDE.x, i));
      const tooMany = await post('/predict/batch?explain=true', { records: many });
      assert.equal(tooMany.statusCode, 400, tooMany.body);
      assert.match(tooMany.json<{ details: string }>().details, new RegExp(`explain.*at most ${MAX_EXPLAIN_ROWS} rows`));
      const limit = await post('/predict/batch?explain=true', { records: many.slice(0, MAX_EXPLAIN_ROWS) });
      assert.equal(limit.statusCode, 200, limit.body);

      const labels = await post('/predict?model=labels&version=1&explain=true', { a: 1, b: 2 });
      assert.equal(labels.statusCode, 400, labels.body);
      assert.match(labels.json<{ details: string }>().details, /explain.*class labels only/);

      const invocations = await t.app.inject({
        method: 'POST',
        url: '/invocations?model=wide&explain=true',
        payload: { inputs: [rowOf(WIDE.x, 0)] },
        headers: t.headers('predict'),
      });
      assert.equal(invocations.statusCode, 200, invocations.body);
      assert.equal(invocations.json<{ predictions: unknown[] }>().predictions.length, 1);
    });
  });
}
