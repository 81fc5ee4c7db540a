/**
 * Histogram gradient boosting on worker threads: the model is the same to the last bit whatever
 * the number of threads (each row chunk's histogram is summed in row order, the chunks added in
 * chunk order, and chunks depend on the node alone), a cancel still stops the fit, and the threads
 * end with the fit. `parallel_threshold: 0` forces the workers on data small enough for a test;
 * nodes of at least 50,000 rows x features share their histograms (in chunks of 8,192 rows or
 * more from 16,384 rows), nodes of at least 16,384 rows their partition.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Ctl, claimUnit, claimWord, fitGradientBoosting, type GradientBoostingParams } from '../../src/ml/gbdt.ts';
import { createRng } from '../../src/util/random.ts';
import type { TrainingData, TreeEnsembleModel } from '../../src/ml/types.ts';

/** n x p normal features, some missing; regression target or `k` classes. */
function data(n: number, p: number, k: number, seed: number): TrainingData {
  const rng = createRng(seed);
  const values = Float64Array.from({ length: n * p }, () => (rng.next() < 0.03 ? NaN : rng.normal()));
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = values[i * p] || 0;
    const b = values[i * p + 1] || 0;
    const z = 2 * a - b + a * (values[i * p + 2] || 0) + 0.5 * rng.normal();
    y[i] = k === 0 ? z : Math.min(k - 1, Math.max(0, Math.floor(z / 2 + k / 2)));
  }
  return { x: { rows: n, cols: p, values }, y, task: k === 0 ? 'regression' : 'classification', nClasses: k };
}

function assertSameModel(a: TreeEnsembleModel, b: TreeEnsembleModel, label: string): void {
  assert.equal(a.trees.length, b.trees.length, `${label}: tree count`);
  assert.deepEqual(a.baseValues, b.baseValues, label);
  a.trees.forEach((t, i) => assert.deepEqual(t, b.trees[i], `${label}: tree ${i}`));
}

/** Threads of this process (Linux); undefined elsewhere. */
function threadCount(): number | undefined {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return undefined;
  }
}

/** Resolves once the process is back to at most `n` threads (a terminated thread may linger an instant). */
async function threadsBackTo(n: number): Promise<void> {
  while ((threadCount() ?? 0) > n) await new Promise((resolve) => setTimeout(resolve, 10));
}

class Stop extends Error {}

void describe('gradient boosting on worker threads', { timeout: 240_000 }, () => {
  const cases: [string, TrainingData][] = [
    ['regression', data(12_000, 7, 0, 1)],
    ['binary', data(12_000, 7, 2, 2)],
    ['multiclass', data(12_000, 7, 3, 3)],
  ];
  for (const [name, d] of cases) {
    void test(`${name}: the same model on 1, 2 and 3 threads`, async () => {
      const params: GradientBoostingParams = { max_iter: 15, seed: 4, parallel_threshold: 0 };
      const one = await fitGradientBoosting(d, { ...params, n_jobs: 1 });
      assert.ok(one.trees.length >= 15, 'fitted some trees');
      assertSameModel(one, await fitGradientBoosting(d, { ...params, n_jobs: 2 }), `${name}, 2 threads`);
      assertSameModel(one, await fitGradientBoosting(d, { ...params, n_jobs: 3 }), `${name}, 3 threads`);
    });
  }

  void test('large nodes are histogrammed and partitioned in chunks on the threads: the same model', async () => {
    const d = data(300_000, 3, 0, 7);
    const params: GradientBoostingParams = { max_iter: 4, seed: 1, parallel_threshold: 0 };
    assertSameModel(await fitGradientBoosting(d, { ...params, n_jobs: 1 }), await fitGradientBoosting(d, { ...params, n_jobs: 2 }), 'chunked partition');
  });

  void test('chunked histograms with hessians (multiclass): the same model on 1, 2 and 3 threads', async () => {
    const d = data(60_000, 5, 3, 8);
    const params: GradientBoostingParams = { max_iter: 3, seed: 2, parallel_threshold: 0, early_stopping: false };
    const one = await fitGradientBoosting(d, { ...params, n_jobs: 1 });
    assertSameModel(one, await fitGradientBoosting(d, { ...params, n_jobs: 2 }), 'multiclass, 2 threads');
    assertSameModel(one, await fitGradientBoosting(d, { ...params, n_jobs: 3 }), 'multiclass, 3 threads');
  });

  void test('the same model for the same seed with early stopping on threads', async () => {
    const d = data(20_000, 6, 0, 5);
    const params: GradientBoostingParams = { max_iter: 30, early_stopping: true, seed: 9, parallel_threshold: 0 };
    assertSameModel(await fitGradientBoosting(d, { ...params, n_jobs: 1 }), await fitGradientBoosting(d, { ...params, n_jobs: 2 }), 'early stopping');
  });

  void test('the workers run during the fit and end with it', async (t) => {
    const d = cases[0]![1];
    // A first fit starts whatever threads the process keeps (tsx's loader among them).
    await fitGradientBoosting(d, { max_iter: 2, n_jobs: 3, parallel_threshold: 0 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = threadCount();
    if (before === undefined) {
      t.skip('no /proc/self/task on this platform');
      return;
    }
    let during = 0;
    let last = '';
    await fitGradientBoosting(data(40_000, 7, 0, 6), { max_iter: 20, n_jobs: 3, parallel_threshold: 0 }, (f, message) => {
      if (f > 0) during = Math.max(during, threadCount()!);
      last = message;
    });
    assert.ok(during >= before + 2, `two workers during the fit (${before} threads before, ${during} during)`);
    const share = /^(\d+)% of the histogram units built on worker threads$/.exec(last);
    assert.ok(share !== null, last);
    assert.ok(Number(share[1]) > 0, `the workers built some features: ${last}`);
    await threadsBackTo(before);
  });

  void test('a cancel stops a threaded fit and ends its workers', async () => {
    const d = cases[1]![1];
    const before = threadCount();
    const controller = new AbortController();
    let reports = 0;
    const fit = fitGradientBoosting(d, { max_iter: 10_000, early_stopping: false, n_jobs: 2, parallel_threshold: 0 }, () => {
      if (++reports === 3) controller.abort(new Stop('cancelled'));
    }, controller.signal);
    await assert.rejects(fit, Stop);
    assert.equal(reports, 3, 'stopped at the first pause after the abort');
    if (before !== undefined) await threadsBackTo(before);
  });

  void test('a progress callback that throws stops a threaded fit', async () => {
    const d = cases[2]![1];
    const before = threadCount();
    let reports = 0;
    const fit = fitGradientBoosting(d, { max_iter: 10_000, early_stopping: false, n_jobs: 2, parallel_threshold: 0 }, () => {
      if (++reports === 2) throw new Stop('cancelled');
    });
    await assert.rejects(fit, Stop);
    if (before !== undefined) await threadsBackTo(before);
  });

  void test('units are claimed once each, only under the current task number, and not from a closed task', () => {
    const control = new Int32Array(new SharedArrayBuffer(Ctl.Length * 4));
    control[Ctl.Claim] = claimWord(7, 0);
    assert.deepEqual([claimUnit(control, 7, 3), claimUnit(control, 7, 3), claimUnit(control, 7, 3), claimUnit(control, 7, 3)], [0, 1, 2, -1]);
    assert.equal(claimUnit(control, 6, 3), -1, 'an older task number claims nothing');
    // A worker that read the next task's (larger) unit count while still on task 7 claims nothing
    // once the task is closed, which the calling thread does before writing the next task.
    assert.equal(claimUnit(control, 7, 10), 3, 'an exhausted but open word would hand out a stale unit');
    control[Ctl.Claim] = claimWord(7, 0xffff);
    assert.equal(claimUnit(control, 7, 10), -1);
    control[Ctl.Claim] = claimWord(8, 0);
    assert.equal(claimUnit(control, 7, 10), -1);
    assert.equal(claimUnit(control, 8 + 0x8000, 10), 0, 'task numbers wrap at 15 bits');
  });

  void test('invalid n_jobs is refused before any thread starts', async () => {
    await assert.rejects(fitGradientBoosting(cases[0]![1], { n_jobs: 0 }), /n_jobs/);
  });
});
