/**
 * Request row buffers are given back to their model once nothing reads them and reused by the next
 * request of the same size (LoadedModel.takeRows / releaseRows); the micro-batcher packs runs of
 * several requests into one buffer it keeps. Neither may hand out a buffer still in use.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { MicroBatcher } from '../../src/serving/batcher.ts';
import { LoadedModel } from '../../src/serving/loaded-model.ts';
import type { FloatRows, ModelRuntime, RawOutputs } from '../../src/serving/runtime.ts';
import { linearRegressor } from './harness.ts';

function model(): LoadedModel {
  const { signature } = prepareForServing(linearRegressor(['a', 'b', 'c'], [1, 2, 3]));
  const runtime: ModelRuntime = { device: 'cpu', run: () => Promise.reject(new Error('not run here')), release: () => Promise.resolve() };
  const identity = { name: 'm', version: '1', stage: null, aliases: [], metrics: {}, runId: null, createdAt: null, source: 'm', cacheTag: 'm' };
  return new LoadedModel(identity, signature, runtime, { maxBatchRows: 100, maxQueueRows: 1000, maxQueueDelayUs: 0 });
}

void describe('row buffers', () => {
  test('a buffer given back is taken again by the next request of the same size, not by another size', () => {
    const m = model();
    const single = m.takeRows(1);
    const batch = m.takeRows(10);
    assert.equal(single.length, 3);
    assert.equal(batch.length, 30);
    m.releaseRows(single);
    m.releaseRows(batch);
    assert.notEqual(m.takeRows(2), batch, 'another size gets a buffer of its own');
    assert.equal(m.takeRows(10), batch);
    assert.equal(m.takeRows(1), single);
    assert.notEqual(m.takeRows(1), single, 'taken once, it is no longer spare');
  });

  test('a buffer given back twice is still handed out once', () => {
    const m = model();
    const a = m.takeRows(4);
    m.releaseRows(a);
    m.releaseRows(a);
    const first = m.takeRows(4);
    const second = m.takeRows(4);
    assert.equal(first, a);
    assert.notEqual(second, a);
  });

  test('the spares are bounded: the oldest are dropped', () => {
    const m = model();
    const given = Array.from({ length: 40 }, () => m.takeRows(1));
    for (const b of given) m.releaseRows(b);
    const back = new Set(Array.from({ length: 40 }, () => m.takeRows(1)));
    const kept = given.filter((b) => back.has(b));
    assert.equal(kept.length, 32);
    assert.deepEqual(kept, given.slice(8), 'the 32 given back last');
  });

  test('packed runs share one buffer, and a run keeps its rows until its promise settles', async () => {
    const inputs: FloatRows[] = [];
    const gates: (() => void)[] = [];
    const run = (input: FloatRows, rows: number): Promise<RawOutputs> => {
      inputs.push(input);
      const seen = Array.from(input);
      return new Promise((resolve) =>
        gates.push(() => {
          // Nothing may have written into this run's rows while it was running.
          assert.deepEqual(Array.from(input), seen);
          const values = new Float64Array(rows);
          for (let i = 0; i < rows; i++) values[i] = input[i * 2]!;
          resolve({ rows, probabilities: null, labels: null, values, width: 1 });
        }),
      );
    };
    const b = new MicroBatcher(run, { nFeatures: 2, double: false, maxBatchRows: 100, maxQueueRows: 1000, maxQueueDelayUs: 0 });
    const answers: Promise<void>[] = [];
    let v = 0;
    const submit = (): void => {
      const mine = ++v;
      answers.push(b.submit(Float32Array.from([mine, -mine]), 1).then((s) => assert.equal(s.outputs.values![s.offset], mine)));
    };
    submit();
    for (let round = 0; round < 6; round++) {
      // While a run is in flight, more requests queue up and are packed into the next one.
      for (let k = 0; k < 4; k++) submit();
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    while (gates.length > 0) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(answers);
    const packed = inputs.slice(1);
    assert.ok(packed.every((input) => input.buffer === packed[0]!.buffer), 'packed runs use one buffer');
  });
});
