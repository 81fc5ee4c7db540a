/**
 * INFERENCE_THREAD: sessions in the worker thread answer exactly like sessions on the event loop,
 * concurrent calls get their own answers, a thread that stops is replaced (sessions reload), and the
 * setting reaches serving through the configuration.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { sharedInferenceThread } from '../../src/serving/inference-thread.ts';
import { createRuntime, type ModelRuntime, type RawOutputs } from '../../src/serving/runtime.ts';
import { onnxRuntime } from '../../src/onnx/runtime.ts';
import { classifierOnnx, regressorOnnx } from '../registry/fixtures.ts';
import { buildServingApp, linearRegressor } from './harness.ts';

const prepared = { classifier: prepareForServing(classifierOnnx()), regressor: prepareForServing(regressorOnnx()) };

function rows(n: number, f: number): Float32Array {
  return Float32Array.from({ length: n * f }, (_, i) => ((i * 7) % 13) / 4 - 1);
}

function numbers(out: RawOutputs): number[] {
  return Array.from((out.probabilities ?? out.values)!);
}

void describe('inference thread', () => {
  after(() => sharedInferenceThread().close());

  for (const kind of ['classifier', 'regressor'] as const) {
    test(`${kind}: the thread answers exactly like the event loop`, async () => {
      const { bytes, signature } = prepared[kind];
      const local = await createRuntime(onnxRuntime, bytes, signature);
      const threaded = await createRuntime(onnxRuntime, bytes, signature, { thread: true });
      try {
        const f = signature.input.nFeatures;
        for (const n of [1, 7, 300]) {
          const input = rows(n, f);
          const [a, b] = await Promise.all([local.run(input, n), threaded.run(input, n)]);
          assert.equal(b.rows, n);
          assert.equal(b.width, a.width);
          assert.deepEqual(numbers(b), numbers(a));
          // A view into a larger buffer (a packed run, a fixed-batch chunk) is answered the same.
          const view = rows(n + 50, f).subarray(0, n * f);
          assert.deepEqual(numbers(await threaded.run(view, n)), numbers(a));
        }
      } finally {
        await Promise.all([local.release(), threaded.release()]);
      }
    });
  }

  test('concurrent calls of several sessions each get their own answer', async () => {
    const runtimes: [ModelRuntime, number][] = await Promise.all(
      (['classifier', 'regressor'] as const).map(async (k) => [await createRuntime(onnxRuntime, prepared[k].bytes, prepared[k].signature, { thread: true }), prepared[k].signature.input.nFeatures] as [ModelRuntime, number]),
    );
    try {
      const calls = Array.from({ length: 40 }, (_, i) => {
        const [runtime, f] = runtimes[i % 2]!;
        const n = 1 + (i % 5);
        return runtime.run(rows(n, f), n).then((out) => ({ i, n, out }));
      });
      for (const { i, n, out } of await Promise.all(calls)) {
        assert.equal(out.rows, n, `call ${i}`);
        // The classifier answers two probabilities per row, the regressor one value.
        assert.equal(numbers(out).length, n * (i % 2 === 0 ? 2 : 1), `call ${i}`);
      }
    } finally {
      await Promise.all(runtimes.map(([r]) => r.release()));
    }
  });

  test('a stopped thread is replaced and its sessions load again', async () => {
    const { bytes, signature } = prepared.regressor;
    const runtime = await createRuntime(onnxRuntime, bytes, signature, { thread: true });
    const input = rows(3, 3);
    const before = numbers(await runtime.run(input, 3));
    const generation = sharedInferenceThread().generation;
    await sharedInferenceThread().close();
    assert.deepEqual(numbers(await runtime.run(input, 3)), before);
    assert.equal(sharedInferenceThread().generation, generation + 1);
    await runtime.release();
  });

  test('a model the runtime cannot load is refused from the thread', async () => {
    const { signature } = prepared.regressor;
    await assert.rejects(createRuntime(onnxRuntime, Uint8Array.of(1, 2, 3, 4), signature, { thread: true }));
  });

  test('INFERENCE_THREAD=true reaches serving: predictions come from the thread', async () => {
    const t = await buildServingApp({
      env: { MODEL_NAME: 'm', INFERENCE_THREAD: 'true' },
      seed: async (r) => void (await r.register('m', linearRegressor(['a', 'b'], [2, 3], 1), {}, 'Production')),
    });
    try {
      const generation = sharedInferenceThread().generation;
      const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { a: 1, b: 2 }, headers: t.headers('predict') });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json<{ prediction: number }>().prediction, 9);
      // The session lives in the thread: stopping it makes the next prediction reload it there.
      await sharedInferenceThread().close();
      const again = await t.app.inject({ method: 'POST', url: '/predict', payload: { a: 2, b: 2 }, headers: t.headers('predict') });
      assert.equal(again.json<{ prediction: number }>().prediction, 11);
      assert.ok(sharedInferenceThread().generation > generation);
    } finally {
      await t.close();
    }
  });
});
