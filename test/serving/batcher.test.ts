import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MicroBatcher, QueueFullError } from '../../src/serving/batcher.ts';
import type { FloatRows, RawOutputs } from '../../src/serving/runtime.ts';

/** A runtime double whose outputs echo the first feature of every row, resolving when told. */
function echoRuntime(): { run: (input: FloatRows, rows: number) => Promise<RawOutputs>; calls: number[]; release: () => void } {
  const calls: number[] = [];
  let gate: (() => void)[] = [];
  return {
    calls,
    release: () => {
      const g = gate;
      gate = [];
      for (const r of g) r();
    },
    run: (input, rows) => {
      calls.push(rows);
      const values = new Float64Array(rows);
      for (let i = 0; i < rows; i++) values[i] = input[i * 2]!;
      return new Promise((resolve) => gate.push(() => resolve({ rows, probabilities: null, labels: null, values, width: 1 })));
    },
  };
}

const row = (v: number): Float32Array => Float32Array.from([v, -v]);

void describe('MicroBatcher', () => {
  test('requests that wait while the runtime is busy go in one run, answers in order', async () => {
    const rt = echoRuntime();
    const b = new MicroBatcher(rt.run, { nFeatures: 2, double: false, maxBatchRows: 100, maxQueueRows: 1000, maxQueueDelayUs: 0 });
    const first = b.submit(row(0), 1);
    const rest = Array.from({ length: 10 }, (_, i) => b.submit(row(i + 1), 1));
    assert.deepEqual(rt.calls, [1], 'the first request runs at once, alone');
    rt.release();
    await first;
    assert.deepEqual(rt.calls, [1, 10], 'the ten waiting requests form the next run');
    rt.release();
    const slices = await Promise.all(rest);
    slices.forEach((s, i) => assert.equal(s.outputs.values![s.offset], i + 1));
    assert.equal(b.stats().runs, 2);
  });

  test('multi-row requests are packed up to maxBatchRows and kept whole', async () => {
    const rt = echoRuntime();
    const b = new MicroBatcher(rt.run, { nFeatures: 2, double: false, maxBatchRows: 5, maxQueueRows: 1000, maxQueueDelayUs: 0 });
    const busy = b.submit(row(0), 1);
    const multi = (start: number, n: number): Float32Array => Float32Array.from(Array.from({ length: n }, (_, i) => [start + i, 0]).flat());
    const a = b.submit(multi(10, 3), 3);
    const c = b.submit(multi(20, 3), 3);
    const big = b.submit(multi(30, 7), 7);
    for (let i = 0; i < 4; i++) {
      rt.release();
      await new Promise((r) => setImmediate(r));
    }
    await busy;
    const [sa, sc, sb] = await Promise.all([a, c, big]);
    assert.deepEqual(rt.calls, [1, 3, 3, 7]);
    assert.deepEqual(Array.from({ length: 3 }, (_, i) => sa.outputs.values![sa.offset + i]), [10, 11, 12]);
    assert.deepEqual(Array.from({ length: 3 }, (_, i) => sc.outputs.values![sc.offset + i]), [20, 21, 22]);
    assert.equal(sb.outputs.values![sb.offset + 6], 36);
  });

  test('under steady load (the queue never empties) answered requests leave nothing behind in the queue', async () => {
    // A full collection on demand: a context created after the flag is set has gc().
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const rt = echoRuntime();
    const b = new MicroBatcher(rt.run, { nFeatures: 2, double: false, maxBatchRows: 1, maxQueueRows: 1000, maxQueueDelayUs: 0 });
    const inputs: WeakRef<Float32Array>[] = [];
    const submit = (v: number): Promise<unknown> => {
      const input = row(v);
      inputs.push(new WeakRef(input));
      return b.submit(input, 1);
    };
    // One request runs while two wait; each answer lets the next one in: 40 answered requests, and
    // the queue was never empty when a run was dispatched.
    const pending = [submit(0), submit(1), submit(2)];
    for (let i = 3; i < 43; i++) {
      rt.release();
      await pending.shift();
      pending.push(submit(i));
    }
    assert.equal(b.stats().queued_rows, 2);
    assert.equal(b.stats().runs, 41);
    for (let i = 0; i < 2; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const kept = inputs.slice(0, 40).filter((w) => w.deref() !== undefined).length;
    assert.equal(kept, 0, `${kept} of 40 answered requests' rows are still reachable`);
    for (const p of pending) {
      rt.release();
      await p;
    }
  });

  test('a full queue refuses with QueueFullError instead of growing', async () => {
    const rt = echoRuntime();
    const b = new MicroBatcher(rt.run, { nFeatures: 2, double: false, maxBatchRows: 4, maxQueueRows: 3, maxQueueDelayUs: 0 });
    const running = b.submit(row(0), 1);
    const queued = [b.submit(row(1), 1), b.submit(row(2), 1), b.submit(row(3), 1)];
    await assert.rejects(b.submit(row(4), 1), QueueFullError);
    rt.release();
    await running;
    rt.release();
    await Promise.all(queued);
  });

  test('with a queue delay, a lone request waits for company (Triton semantics)', async () => {
    const rt = echoRuntime();
    const b = new MicroBatcher(rt.run, { nFeatures: 2, double: false, maxBatchRows: 3, maxQueueRows: 100, maxQueueDelayUs: 20_000 });
    const p1 = b.submit(row(1), 1);
    assert.deepEqual(rt.calls, [], 'held back');
    const p2 = b.submit(row(2), 1);
    const p3 = b.submit(row(3), 1);
    assert.deepEqual(rt.calls, [3], 'a full batch goes at once');
    rt.release();
    await Promise.all([p1, p2, p3]);
    const p4 = b.submit(row(4), 1);
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(rt.calls, [3, 1], 'the delay expired');
    rt.release();
    await p4;
  });

  test('a failing run rejects every request in it; the next run goes on', async () => {
    let fail = true;
    const b = new MicroBatcher(
      (_input, rows) => (fail ? Promise.reject(new Error('boom')) : Promise.resolve({ rows, probabilities: null, labels: null, values: new Float64Array(rows), width: 1 })),
      { nFeatures: 2, double: false, maxBatchRows: 10, maxQueueRows: 100, maxQueueDelayUs: 0 },
    );
    await assert.rejects(b.submit(row(1), 1), /boom/);
    fail = false;
    await b.submit(row(2), 1);
  });
});
