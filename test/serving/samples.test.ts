/**
 * Converter-made ONNX files from /work/shared/onnx-samples served end to end (ZipMap removal,
 * int64 and string labels, label outputs declared [1], fixed batch dimensions), compared with the
 * fixtures. Skips when the shared folder is absent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { LoadedModel, labelOnlyJson, rowJson } from '../../src/serving/loaded-model.ts';
import { createRuntime } from '../../src/serving/runtime.ts';
import { onnxRuntime } from '../../src/onnx/runtime.ts';
import { HAS_SAMPLES, SAMPLES, SHARED } from './harness.ts';

async function load(file: string, intraOpThreads = 1): Promise<LoadedModel> {
  const prepared = prepareForServing(readFileSync(path.join(SAMPLES, file)));
  const runtime = await createRuntime(onnxRuntime, prepared.bytes, prepared.signature, { intraOpThreads });
  const identity = { name: file, version: '1', stage: null, aliases: [], metrics: {}, runId: null, createdAt: null, source: file, cacheTag: file };
  return new LoadedModel(identity, prepared.signature, runtime, { maxBatchRows: 1000, maxQueueRows: 10000, maxQueueDelayUs: 0 });
}

/** Every row through the micro-batcher, one request per row and all at once, parsed back from the JSON fragments. */
async function predictRows(model: LoadedModel, rows: readonly (readonly number[])[]): Promise<{ prediction: unknown; probability?: number[] }[]> {
  return Promise.all(
    rows.map(async (r) => {
      const input = model.allocRows(1);
      input.set(r);
      const slice = await model.batcher.submit(input, 1);
      return JSON.parse(`{${rowJson(model, slice.outputs, slice.offset)}}`) as { prediction: unknown; probability?: number[] };
    }),
  );
}

function irisRows(): number[][] {
  const lines = readFileSync(path.join(SHARED, 'datasets/iris.csv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => l.split(',').slice(0, 4).map((v) => Math.fround(Number(v))));
}

void describe('converter-made models (onnx-samples)', { skip: !HAS_SAMPLES }, () => {
  for (const file of ['iris_logreg_skl2onnx-1.7.0.onnx', 'iris_rf_skl2onnx-1.11.2.onnx', 'iris_knn_skl2onnx-1.6.1.onnx']) {
    test(`${file}: 150 iris rows reproduce the fixture`, async () => {
      const fixture = JSON.parse(readFileSync(path.join(SAMPLES, 'fixtures', file.replace('.onnx', '.iris150.json')), 'utf8')) as { labels: number[]; probabilities: number[][] };
      // The fixture is one 150-row run with onnxruntime's default threads. Tree ensembles sum their
      // trees in an order that depends on the thread count (the machine's cores), so only the last
      // float32 bits may differ from it.
      const exact = await load(file, 0);
      try {
        const input = exact.allocRows(150);
        input.set(irisRows().flat());
        const out = await exact.runtime.run(input, 150);
        const got = irisRows().map((_, i) => (JSON.parse(`{${rowJson(exact, out, i)}}`) as { probability: number[] }).probability);
        got.forEach((g, i) => fixture.probabilities[i]!.forEach((p, k) => assert.ok(Math.abs(g[k]! - p) < 1e-6, `row ${i}: ${g[k]} against ${p}`)));
      } finally {
        await exact.runtime.release();
      }
      const model = await load(file);
      try {
        // Micro-batched single rows: other batch shapes and thread counts change only the last float32 bit.
        const got = await predictRows(model, irisRows());
        got.forEach((g, i) => fixture.probabilities[i]!.forEach((p, k) => assert.ok(Math.abs(g.probability![k]! - p) < 1e-6, `row ${i}`)));
        // The label is the most probable class; it agrees with the converter's label output wherever
        // the probabilities have a unique maximum.
        got.forEach((g, i) => {
          const p = fixture.probabilities[i]!;
          const max = Math.max(...p);
          if (p.filter((v) => v === max).length === 1) assert.equal(g.prediction, fixture.labels[i], `row ${i}`);
          assert.equal(typeof g.prediction, 'number');
        });
        assert.ok(model.batcher.stats().runs < 150, 'concurrent rows were batched');
      } finally {
        await model.runtime.release();
      }
    });
  }

  interface SklearnFixture {
    input: number[][];
    expected: { values: unknown[] }[];
  }
  const sk = (name: string): SklearnFixture => JSON.parse(readFileSync(path.join(SAMPLES, 'fixtures', `${name}.json`), 'utf8')) as SklearnFixture;

  test('fixed batch [1,2] with string labels (GradientBoosting A/B)', async () => {
    const f = sk('SklearnBinGradientBoostingClassifier');
    const model = await load('SklearnBinGradientBoostingClassifier.model.onnx');
    try {
      assert.equal(model.signature.input.fixedBatch, 1);
      const got = await predictRows(model, f.input);
      assert.deepEqual(
        got.map((g) => g.prediction),
        f.expected[0]!.values,
      );
      const probs = f.expected[1]!.values as number[][];
      got.forEach((g, i) => probs[i]!.forEach((p, k) => assert.ok(Math.abs(g.probability![k]! - p) < 1e-6)));
      // One request with all rows: split into fixed batches, answers in order.
      const input = model.allocRows(f.input.length);
      input.set(f.input.flat());
      const out = await model.runtime.run(input, f.input.length);
      assert.deepEqual(
        f.input.map((_, i) => JSON.parse(labelOnlyJson(model, out, i)) as unknown),
        f.expected[0]!.values,
      );
    } finally {
      await model.runtime.release();
    }
  });

  test('fixed batch [1,3] multinomial logistic regression, 150 rows', async () => {
    const f = sk('SklearnLogitisticRegressionMulti');
    const model = await load('SklearnLogitisticRegressionMulti.model.onnx');
    try {
      const got = await predictRows(model, f.input);
      assert.deepEqual(
        got.map((g) => g.prediction),
        f.expected[0]!.values,
      );
      const probs = f.expected[1]!.values as number[][];
      got.forEach((g, i) => probs[i]!.forEach((p, k) => assert.ok(Math.abs(g.probability![k]! - p) < 1e-6, `row ${i}`)));
    } finally {
      await model.runtime.release();
    }
  });

  test('fixed batch regressor and a fixed batch of 4 padded for 3 rows', async () => {
    const f = sk('SklearnRegGradientBoostingRegressor');
    const reg = await load('SklearnRegGradientBoostingRegressor.model.onnx');
    try {
      const got = await predictRows(reg, f.input);
      got.forEach((g, i) => assert.ok(Math.abs((g.prediction as number) - (f.expected[0]!.values[i] as number)) < 1e-4));
    } finally {
      await reg.runtime.release();
    }
    const s = sk('SklearnStandardScalerFloat32');
    const scaler = await load('SklearnStandardScalerFloat32.model.onnx');
    try {
      assert.equal(scaler.signature.input.fixedBatch, 4);
      const rows = s.input.slice(0, 3);
      const input = scaler.allocRows(3);
      input.set(rows.flat());
      const out = await scaler.runtime.run(input, 3);
      assert.equal(out.rows, 3);
      const expected = (s.expected[0]!.values as number[][]).slice(0, 3);
      rows.forEach((_, i) => {
        const got = (JSON.parse(`{${rowJson(scaler, out, i)}}`) as { prediction: number[] }).prediction;
        assert.equal(got.length, 3);
        got.forEach((v, k) => assert.ok(Math.abs(v - expected[i]![k]!) < 1e-6, `row ${i} column ${k}`));
      });
    } finally {
      await scaler.runtime.release();
    }
  });
});
