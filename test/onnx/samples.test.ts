/**
 * Real converter output (skl2onnx, onnxmltools) from ../shared/onnx-samples: every model must
 * register (parse, inspect, ZipMap removal, signature) and, served from the rewritten bytes,
 * reproduce the fixture outputs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { maxAbsDiff, runModel, SHARED } from './helpers.ts';

const SAMPLES = path.join(SHARED, 'onnx-samples');
const IRIS = path.join(SHARED, 'datasets', 'iris.csv');
const skip = !existsSync(SAMPLES);
const noIris = !existsSync(IRIS);

interface Case {
  readonly file: string;
  readonly fixture: string;
  readonly task: 'classification' | 'regression';
  readonly classLabels: (number | string)[] | null;
  readonly fixedBatch: number | null;
  readonly zipMap: boolean;
}

const CASES: Case[] = [
  { file: 'iris_logreg_skl2onnx-1.7.0.onnx', fixture: 'iris_logreg_skl2onnx-1.7.0.iris150.json', task: 'classification', classLabels: [0, 1, 2], fixedBatch: null, zipMap: true },
  { file: 'iris_rf_skl2onnx-1.11.2.onnx', fixture: 'iris_rf_skl2onnx-1.11.2.iris150.json', task: 'classification', classLabels: [0, 1, 2], fixedBatch: null, zipMap: true },
  { file: 'iris_knn_skl2onnx-1.6.1.onnx', fixture: 'iris_knn_skl2onnx-1.6.1.iris150.json', task: 'classification', classLabels: [0, 1, 2], fixedBatch: null, zipMap: true },
  { file: 'SklearnLogitisticRegressionMulti.model.onnx', fixture: 'SklearnLogitisticRegressionMulti.json', task: 'classification', classLabels: [0, 1, 2], fixedBatch: 1, zipMap: true },
  { file: 'SklearnBinGradientBoostingClassifier.model.onnx', fixture: 'SklearnBinGradientBoostingClassifier.json', task: 'classification', classLabels: ['A', 'B'], fixedBatch: 1, zipMap: true },
  { file: 'SklearnRegGradientBoostingRegressor.model.onnx', fixture: 'SklearnRegGradientBoostingRegressor.json', task: 'regression', classLabels: null, fixedBatch: 1, zipMap: false },
  { file: 'SklearnStandardScalerFloat32.model.onnx', fixture: 'SklearnStandardScalerFloat32.json', task: 'regression', classLabels: null, fixedBatch: 4, zipMap: false },
];

interface Expected {
  rows: number;
  cols: number;
  input: Float32Array;
  labels?: (number | string)[];
  probabilities?: number[];
  values?: number[];
}

/** Reads either fixture layout: sklearn pickles as JSON, or iris150 runs over datasets/iris.csv. */
function loadFixture(name: string, task: Case['task']): Expected {
  const raw = JSON.parse(readFileSync(path.join(SAMPLES, 'fixtures', name), 'utf8')) as Record<string, unknown>;
  if ('expected' in raw) {
    const input = raw.input as number[][];
    const expected = raw.expected as { values: unknown[] }[];
    const base = { rows: input.length, cols: input[0]!.length, input: Float32Array.from(input.flat()) };
    if (task === 'regression') return { ...base, values: (expected[0]!.values as (number | number[])[]).flat() };
    return {
      ...base,
      labels: expected[0]!.values as (number | string)[],
      probabilities: (expected[1]!.values as number[][]).flat(),
    };
  }
  const lines = readFileSync(IRIS, 'utf8').trim().split('\n').slice(1);
  const input = Float32Array.from(lines.flatMap((l) => l.split(',').slice(0, 4).map(Number)));
  return {
    rows: lines.length,
    cols: 4,
    input,
    labels: raw.labels as number[],
    probabilities: (raw.probabilities as number[][]).flat(),
  };
}

void describe('converter-made sample models', { skip }, () => {
  for (const c of CASES) {
    void test(c.file, { skip: noIris && c.fixture.includes('iris150') }, async () => {
      const bytes = new Uint8Array(readFileSync(path.join(SAMPLES, c.file)));
      const prepared = prepareForServing(bytes);
      const sig = prepared.signature;
      assert.equal(sig.task, c.task);
      assert.deepEqual(sig.classLabels, c.classLabels);
      assert.equal(sig.input.fixedBatch, c.fixedBatch);
      assert.equal(prepared.info.hasZipMapOutput, false, 'no ZipMap output left');
      assert.equal(prepared.info.rewrites.some((r) => r.includes('ZipMap')), c.zipMap);
      if (prepared.info.rewrites.length === 0) assert.equal(prepared.bytes, bytes, 'unchanged models keep their original bytes');
      assert.deepEqual(sig.featureNames, Array.from({ length: sig.input.nFeatures }, (_, i) => `f${i}`));
      JSON.parse(JSON.stringify(sig));

      const fx = loadFixture(c.fixture, c.task);
      assert.equal(fx.cols, sig.input.nFeatures);
      const out = await runModel(prepared.bytes, sig.input.name, fx.input, fx.rows, fx.cols, sig.input.fixedBatch);
      if (c.task === 'classification') {
        assert.ok(sig.outputs.probabilities && sig.outputs.label);
        const probs = out[sig.outputs.probabilities]!;
        assert.deepEqual(probs.dims, [fx.rows, c.classLabels!.length]);
        const diff = maxAbsDiff(probs.data, fx.probabilities!);
        assert.ok(diff < 1e-5, `probabilities differ by ${diff}`);
        assert.deepEqual(out[sig.outputs.label]!.data, fx.labels);
        assert.equal(sig.labelType, typeof c.classLabels![0] === 'string' ? 'string' : 'int64');
      } else {
        assert.ok(sig.outputs.value);
        const diff = maxAbsDiff(out[sig.outputs.value]!.data, fx.values!);
        assert.ok(diff < 1e-5, `values differ by ${diff}`);
      }
    });
  }
});
