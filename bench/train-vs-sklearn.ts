/**
 * Benchmark: the built-in random forest and histogram gradient boosting against scikit-learn on the
 * same 80/20 splits of the shared datasets. Runs both sides in one go: writes each split to a temp
 * JSON file, spawns `bench/sklearn_fit.py` for scikit-learn's scores and fit times, then fits ours.
 *
 *   node --import tsx bench/train-vs-sklearn.ts [--jobs 2] [--sk-threads 2]
 *
 * PYTHON selects the interpreter (default: /usr/bin/python3 when present, where Debian's
 * python3-sklearn lives, else python3). `--jobs` sets our forest's workers; `--sk-threads` sets
 * scikit-learn's n_jobs and OMP_NUM_THREADS (both default 2). On a busy machine OpenMP's spinning
 * threads can inflate HistGradientBoosting's times badly; `--sk-threads 1` shows its serial cost.
 * Besides wall-clock fit seconds, both sides report process CPU seconds (all threads), which
 * stay comparable when the machine is shared. Peak RSS is the Node process's high-water mark so far
 * (workers are threads, so they are included).
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fitRandomForest } from '../src/ml/forest.ts';
import { fitGradientBoosting } from '../src/ml/gbdt.ts';
import { accuracy, r2 } from '../src/ml/metrics.ts';
import { predictClasses, predictTrees } from '../src/ml/predict.ts';
import { takeTrainingData, trainTestSplit } from '../src/ml/split.ts';
import type { TrainingData, TreeEnsembleModel } from '../src/ml/types.ts';

const datasetsDir = path.resolve(import.meta.dirname, '../../shared/datasets');
const jobsArg = process.argv.indexOf('--jobs');
const jobs = jobsArg >= 0 ? Number(process.argv[jobsArg + 1]) : 2;
const skArg = process.argv.indexOf('--sk-threads');
const skThreads = skArg >= 0 ? Number(process.argv[skArg + 1]) : 2;

interface Spec {
  readonly name: string;
  readonly file: string;
  readonly target: string;
  readonly task: 'classification' | 'regression';
}

const specs: Spec[] = [
  { name: 'breast_cancer', file: 'breast_cancer.csv', target: 'target', task: 'classification' },
  { name: 'winequality-red', file: 'winequality-red.csv', target: 'quality', task: 'classification' },
  { name: 'california_housing', file: 'california_housing.csv', target: 'median_house_value', task: 'regression' },
];

/** Parses a simple comma-separated file; non-numeric feature columns become sorted category codes. */
function loadCsv(spec: Spec): TrainingData {
  const lines = readFileSync(path.join(datasetsDir, spec.file), 'utf8').trim().split(/\r?\n/);
  const header = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => l.split(','));
  const ti = header.indexOf(spec.target);
  if (ti < 0) throw new Error(`${spec.file} has no column ${spec.target}`);
  const featureCols = header.map((_, j) => j).filter((j) => j !== ti);
  const encoders = featureCols.map((j) => {
    const vals = rows.map((r) => r[j] ?? '');
    if (vals.every((v) => v === '' || !Number.isNaN(Number(v)))) return null;
    const cats = [...new Set(vals.filter((v) => v !== ''))].sort();
    return new Map(cats.map((c, k) => [c, k]));
  });
  const n = rows.length;
  const p = featureCols.length;
  const values = new Float64Array(n * p);
  rows.forEach((r, i) => {
    featureCols.forEach((j, c) => {
      const raw = r[j] ?? '';
      const enc = encoders[c];
      values[i * p + c] = raw === '' ? NaN : enc ? (enc.get(raw) ?? NaN) : Number(raw);
    });
  });
  let y = Float64Array.from(rows, (r) => Number(r[ti]));
  let nClasses = 0;
  if (spec.task === 'classification') {
    const labels = [...new Set(y)].sort((a, b) => a - b);
    const code = new Map(labels.map((l, k) => [l, k]));
    y = Float64Array.from(y, (v) => code.get(v)!);
    nClasses = labels.length;
  }
  return { x: { rows: n, cols: p, values }, y, task: spec.task, nClasses };
}

function toRows(d: TrainingData): (number | null)[][] {
  const out: (number | null)[][] = [];
  for (let i = 0; i < d.x.rows; i++) {
    const row: (number | null)[] = [];
    for (let j = 0; j < d.x.cols; j++) {
      const v = d.x.values[i * d.x.cols + j]!;
      row.push(Number.isNaN(v) ? null : v);
    }
    out.push(row);
  }
  return out;
}

function score(model: TreeEnsembleModel, test: TrainingData): number {
  const pred = predictTrees(model, test.x);
  if (test.task === 'classification') return accuracy(test.y, predictClasses(pred, test.nClasses));
  if (pred.values === undefined) throw new Error('regression predictions hold no values');
  return r2(test.y, pred.values);
}

interface Row {
  dataset: string;
  algorithm: string;
  skScore: number;
  skFit: number;
  skCpu: number;
  ourScore: number;
  ourFit: number;
  ourCpu: number;
  rssMiB: number;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mp-bench-'));
  const splits = specs.map((spec) => {
    const data = loadCsv(spec);
    const idx = trainTestSplit(data.x.rows, {
      testSize: 0.2,
      seed: 42,
      stratify: spec.task === 'classification' ? data.y : undefined,
    });
    const train = takeTrainingData(data, idx.train);
    const test = takeTrainingData(data, idx.test);
    const file = path.join(tmp, `${spec.name}.json`);
    writeFileSync(
      file,
      JSON.stringify({ name: spec.name, task: spec.task, xTrain: toRows(train), yTrain: [...train.y], xTest: toRows(test), yTest: [...test.y] }),
    );
    return { spec, train, test, file };
  });

  const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const res = spawnSync(python, [path.resolve(import.meta.dirname, 'sklearn_fit.py'), ...splits.map((s) => s.file)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(skThreads), SK_N_JOBS: String(skThreads) },
    maxBuffer: 1 << 24,
  });
  rmSync(tmp, { recursive: true, force: true });
  if (res.status !== 0) throw new Error(`sklearn side failed (${python}): ${res.stderr}`);
  const sk = JSON.parse(res.stdout) as { dataset: string; algorithm: string; score: number; fitSeconds: number; cpuSeconds: number }[];

  const rows: Row[] = [];
  for (const { spec, train, test } of splits) {
    for (const algorithm of ['random_forest', 'hist_gradient_boosting']) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const model =
        algorithm === 'random_forest' ? await fitRandomForest(train, { n_estimators: 100, n_jobs: jobs, seed: 0 }) : await fitGradientBoosting(train, { seed: 0 });
      const fit = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(c0);
      const ref = sk.find((r) => r.dataset === spec.name && r.algorithm === algorithm);
      rows.push({
        dataset: spec.name,
        algorithm,
        skScore: ref?.score ?? NaN,
        skFit: ref?.fitSeconds ?? NaN,
        skCpu: ref?.cpuSeconds ?? NaN,
        ourScore: score(model, test),
        ourFit: fit,
        ourCpu: (cpu.user + cpu.system) / 1e6,
        rssMiB: process.resourceUsage().maxRSS / 1024,
      });
    }
  }

  const head = [
    'dataset',
    'algorithm',
    'metric',
    'sklearn score',
    'sklearn fit s',
    'sklearn cpu s',
    'ours score',
    'ours fit s',
    'ours cpu s',
    'fit ratio',
    'cpu ratio',
    'peak RSS MiB',
  ];
  const body = rows.map((r) => [
    r.dataset,
    r.algorithm,
    r.dataset === 'california_housing' ? 'R2' : 'accuracy',
    r.skScore.toFixed(4),
    r.skFit.toFixed(3),
    r.skCpu.toFixed(3),
    r.ourScore.toFixed(4),
    r.ourFit.toFixed(3),
    r.ourCpu.toFixed(3),
    (r.ourFit / r.skFit).toFixed(2),
    (r.ourCpu / r.skCpu).toFixed(2),
    r.rssMiB.toFixed(0),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const line = (cells: string[]): string => cells.map((s, c) => s.padEnd(widths[c]!)).join('  ');
  console.log(`our workers: ${jobs}, scikit-learn threads: ${skThreads}, cores: ${os.availableParallelism()}`);
  console.log(line(head));
  for (const b of body) console.log(line(b));
}

await main();
