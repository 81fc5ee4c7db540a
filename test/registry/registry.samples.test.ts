/**
 * Every converter-made model in ../shared/onnx-samples must register, with the signature its
 * README documents, and the registered (rewritten) file must reproduce scikit-learn's outputs.
 * Skipped when ../shared is absent.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import { multipart } from './fixtures.ts';

const SAMPLES = path.resolve(import.meta.dirname, '../../../shared/onnx-samples');
const HAVE_SAMPLES = existsSync(SAMPLES);

interface Expected {
  input: string;
  nFeatures: number;
  fixedBatch: number | null;
  task: 'classification' | 'regression';
  classLabels: (number | string)[] | null;
  zipMap: boolean;
  fixture?: string;
}

const EXPECTED: Record<string, Expected> = {
  'iris_logreg_skl2onnx-1.7.0.onnx': { input: 'input', nFeatures: 4, fixedBatch: null, task: 'classification', classLabels: [0, 1, 2], zipMap: true },
  'iris_rf_skl2onnx-1.11.2.onnx': { input: 'float_input', nFeatures: 4, fixedBatch: null, task: 'classification', classLabels: [0, 1, 2], zipMap: true },
  'iris_knn_skl2onnx-1.6.1.onnx': { input: 'float_input', nFeatures: 4, fixedBatch: null, task: 'classification', classLabels: [0, 1, 2], zipMap: true },
  'SklearnLogitisticRegressionMulti.model.onnx': {
    input: 'input',
    nFeatures: 3,
    fixedBatch: 1,
    task: 'classification',
    classLabels: [0, 1, 2],
    zipMap: true,
    fixture: 'SklearnLogitisticRegressionMulti.json',
  },
  'SklearnBinGradientBoostingClassifier.model.onnx': {
    input: 'input',
    nFeatures: 2,
    fixedBatch: 1,
    task: 'classification',
    classLabels: ['A', 'B'],
    zipMap: true,
    fixture: 'SklearnBinGradientBoostingClassifier.json',
  },
  'SklearnRegGradientBoostingRegressor.model.onnx': {
    input: 'input',
    nFeatures: 2,
    fixedBatch: 1,
    task: 'regression',
    classLabels: null,
    zipMap: false,
    fixture: 'SklearnRegGradientBoostingRegressor.json',
  },
  'SklearnStandardScalerFloat32.model.onnx': {
    input: 'input',
    nFeatures: 3,
    fixedBatch: 4,
    task: 'regression',
    classLabels: null,
    zipMap: false,
    fixture: 'SklearnStandardScalerFloat32.json',
  },
};

interface Fixture {
  input: number[][];
  expected: { dtype: string; shape: number[]; values: unknown }[];
}

interface Registered {
  version: number;
  rewrites: string[];
  signature: {
    input: { name: string; n_features: number; fixed_batch: number | null };
    feature_names: string[];
    task: string;
    class_labels: (number | string)[] | null;
    outputs: { label?: string; probabilities?: string; value?: string };
  };
}

/** Runs the registered bytes on the fixture rows, `batch` rows per call, and returns one float output. */
async function runRows(bytes: Buffer, inputName: string, output: string, rows: number[][], batch: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const out: number[] = [];
    const width = rows[0]!.length;
    for (let start = 0; start < rows.length; start += batch) {
      const chunk = rows.slice(start, start + batch);
      const data = new Float32Array(batch * width);
      chunk.forEach((row, i) => data.set(row, i * width));
      const result = await session.run({ [inputName]: new ort.Tensor('float32', data, [batch, width]) }, [output]);
      const values = Array.from(result[output]!.data as Float32Array);
      out.push(...values.slice(0, (values.length / batch) * chunk.length));
    }
    return out;
  } finally {
    await session.release();
  }
}

const backends = HAVE_SAMPLES ? await storeBackends() : ['sqlite' as const];

for (const backend of backends) {
  describe(`converter-made sample models register (${backend})`, { skip: !HAVE_SAMPLES && 'no ../shared/onnx-samples' }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(async () => {
      await t?.close();
    });

    const files = HAVE_SAMPLES ? readdirSync(SAMPLES).filter((f) => f.endsWith('.onnx')).sort() : [];

    test('every sample file is known to this test', () => {
      for (const f of files) assert.ok(EXPECTED[f] !== undefined, `no expectations for ${f}`);
    });

    for (const file of files) {
      const expected = EXPECTED[file];
      test(file, { skip: expected === undefined }, async () => {
        const bytes = readFileSync(path.join(SAMPLES, file));
        const body = multipart({}, { bytes, filename: file });
        const name = `sample-${file.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}`;
        const res = await t.app.inject({ method: 'POST', url: `/models/${name}/versions`, payload: body.payload, headers: { ...body.headers, ...t.headers('train') } });
        assert.equal(res.statusCode, 201, res.body);
        const v = res.json<Registered>();
        const e = expected!;
        assert.equal(v.signature.input.name, e.input);
        assert.equal(v.signature.input.n_features, e.nFeatures);
        assert.equal(v.signature.feature_names.length, e.nFeatures);
        assert.equal(v.signature.input.fixed_batch, e.fixedBatch);
        assert.equal(v.signature.task, e.task);
        assert.deepEqual(v.signature.class_labels, e.classLabels);
        assert.equal(v.rewrites.some((r) => /ZipMap/.test(r)), e.zipMap);

        if (e.fixture === undefined) return;
        const fixture = JSON.parse(readFileSync(path.join(SAMPLES, 'fixtures', e.fixture), 'utf8')) as Fixture;
        const art = await t.app.inject({ method: 'GET', url: `/models/${name}/versions/${v.version}/artifact`, headers: t.headers('read') });
        assert.equal(art.statusCode, 200);
        const output = v.signature.outputs.probabilities ?? v.signature.outputs.value!;
        const floats = fixture.expected.find((x) => x.dtype.startsWith('float'))!;
        const want = (floats.values as number[] | number[][]).flat();
        const got = await runRows(art.rawPayload, v.signature.input.name, output, fixture.input, e.fixedBatch ?? fixture.input.length);
        assert.equal(got.length, want.length);
        got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-4, `${file} value ${i}: ${g} vs ${want[i]}`));
      });
    }
  });
}
