/**
 * Benchmark: the built-in random forest and histogram gradient boosting against scikit-learn on the
 * same 80/20 splits of the shared datasets, plus a seeded synthetic 1,000,000 x 20 regression.
 *
 *   node --import tsx bench/train-vs-sklearn.ts [--jobs 2] [--sk-threads 2] [--seeds 5] [--no-1m] [--forest-1m] [--only NAME]
 *     [--algorithm random_forest|hist_gradient_boosting]
 *
 * Every (dataset, algorithm) row runs in its own processes, one per side, so each side's peak RSS
 * (VmHWM of that process; ours includes the forest's worker threads and tsx) belongs to that
 * row. Splits travel as float64 files. Quality is the mean over `--seeds` seeds on both sides (a
 * 100-tree forest's accuracy on a few hundred test rows moves by about 0.01 from one seed to the
 * next, so one seed per side compares noise); fit times are medians over the same fits; the 1M
 * row fits once per side, gradient boosting only unless `--forest-1m` adds scikit-learn's default
 * forest: about a hundred million nodes, which takes each side a quarter of an hour on two cores.
 *
 * PYTHON selects the interpreter (default: /usr/bin/python3 when present, where Debian's
 * python3-sklearn lives, else python3). `--jobs` sets our threads (the forest's workers, gradient
 * boosting's `n_jobs`); `--sk-threads` sets scikit-learn's n_jobs and OMP_NUM_THREADS (both default
 * 2). Besides wall-clock fit seconds, both sides report process CPU seconds (all threads), which
 * stay comparable when the machine is shared. `--only NAME` runs the rows of one dataset (e.g.
 * `--only synthetic_1m_x20` for the 1M row alone, `--only california_housing`); `--algorithm` runs one algorithm's rows.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fitRandomForest } from '../src/ml/forest.ts';
import { fitGradientBoosting } from '../src/ml/gbdt.ts';
import { accuracy, r2 } from '../src/ml/metrics.ts';
import { predictClasses, predictTrees } from '../src/ml/predict.ts';
import { createRng } from '../src/util/random.ts';
import { takeTrainingData, trainTestSplit } from '../src/ml/split.ts';
import type { TrainingData, TreeEnsembleModel } from '../src/ml/types.ts';

const datasetsDir = path.resolve(import.meta.dirname, '../../shared/datasets');
function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const jobs = arg('jobs', 2);
const skThreads = arg('sk-threads', 2);
const seeds = arg('seeds', 5);
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg >= 0 ? process.argv[onlyArg + 1] : undefined;
const algorithmArg = process.argv.indexOf('--algorithm');
const onlyAlgorithm = algorithmArg >= 0 ? process.argv[algorithmArg + 1] : undefined;

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
  // scikit-learn's fetch_california_housing layout: the default-forest case (R2 0.81).
  { name: 'california_sklearn', file: 'california_housing_sklearn_layout.csv', target: 'MedHouseVal', task: 'regression' },
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

/**
 * Seeded 1,000,000 x 20 regression: standard normal features, a target mixing linear terms, an
 * interaction and a step, plus noise (so trees have something to find beyond a plane).
 */
function synthetic1m(): TrainingData {
  const n = 1_000_000;
  const p = 20;
  const rng = createRng(2024);
  const values = new Float64Array(n * p);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let j = 0; j < p; j++) values[o + j] = rng.normal();
    y[i] = 3 * values[o]! - 2 * values[o + 1]! + values[o + 2]! * values[o + 3]! + (values[o + 4]! > 0.5 ? 2 : 0) + rng.normal();
  }
  return { x: { rows: n, cols: p, values }, y, task: 'regression', nClasses: 0 };
}

/** Writes rows as float64: features then the target. */
function writeSplit(d: TrainingData, file: string): void {
  const { rows, cols, values } = d.x;
  const out = new Float64Array(rows * (cols + 1));
  for (let i = 0; i < rows; i++) {
    out.set(values.subarray(i * cols, (i + 1) * cols), i * (cols + 1));
    out[i * (cols + 1) + cols] = d.y[i]!;
  }
  writeFileSync(file, out);
}

function readSplit(file: string, cols: number, task: TrainingData['task'], nClasses: number): TrainingData {
  const buf = readFileSync(file);
  const all = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
  const rows = all.length / (cols + 1);
  const values = new Float64Array(rows * cols);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    values.set(all.subarray(i * (cols + 1), i * (cols + 1) + cols), i * cols);
    y[i] = all[i * (cols + 1) + cols]!;
  }
  return { x: { rows, cols, values }, y, task, nClasses };
}

function score(model: TreeEnsembleModel, test: TrainingData): number {
  const pred = predictTrees(model, test.x);
  if (test.task === 'classification') return accuracy(test.y, predictClasses(pred, test.nClasses));
  if (pred.values === undefined) throw new Error('regression predictions hold no values');
  return r2(test.y, pred.values);
}

interface SplitMeta {
  readonly name: string;
  readonly task: TrainingData['task'];
  readonly nClasses: number;
  readonly cols: number;
  readonly train: string;
  readonly test: string;
}

interface Side {
  scores: number[];
  fitSeconds: number[];
  cpuSeconds: number[];
  maxRssMiB: number;
}

/** Child mode: fits one row `seeds` times and prints a {@link Side}. */
async function runRow(metaFile: string, algorithm: string, nSeeds: number): Promise<void> {
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as SplitMeta;
  const train = readSplit(meta.train, meta.cols, meta.task, meta.nClasses);
  const test = readSplit(meta.test, meta.cols, meta.task, meta.nClasses);
  const out: Side = { scores: [], fitSeconds: [], cpuSeconds: [], maxRssMiB: 0 };
  for (let seed = 0; seed < nSeeds; seed++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const model =
      algorithm === 'random_forest' ? await fitRandomForest(train, { n_estimators: 100, n_jobs: jobs, seed }) : await fitGradientBoosting(train, { n_jobs: jobs, seed });
    out.fitSeconds.push((performance.now() - t0) / 1000);
    const cpu = process.cpuUsage(c0);
    out.cpuSeconds.push((cpu.user + cpu.system) / 1e6);
    out.scores.push(score(model, test));
  }
  out.maxRssMiB = peakRssMiB();
  process.stdout.write(JSON.stringify(out));
}

/**
 * VmHWM of this process (MiB). Not `resourceUsage().maxRSS`: Linux carries ru_maxrss over fork and
 * exec, so a row's process would report at least the parent bench process's size.
 */
function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? process.resourceUsage().maxRSS / 1024 : Number(m[1]) / 1024;
}

const mean = (a: readonly number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function runSide(cmd: string, args: string[], env: Record<string, string>): Side {
  const res = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Side;
}

async function main(): Promise<void> {
  const rowArg = process.argv.indexOf('--row');
  if (rowArg >= 0) {
    await runRow(process.argv[rowArg + 1]!, process.argv[rowArg + 2]!, Number(process.argv[rowArg + 3]));
    return;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mp-bench-'));
  const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const cases: { meta: SplitMeta; algorithms: string[]; seeds: number; metric: string }[] = [];
  const write = (name: string, data: TrainingData, algorithms: string[], nSeeds: number): void => {
    const idx = trainTestSplit(data.x.rows, { testSize: 0.2, seed: 42, stratify: data.task === 'classification' ? data.y : undefined });
    const meta: SplitMeta = {
      name,
      task: data.task,
      nClasses: data.nClasses,
      cols: data.x.cols,
      train: path.join(tmp, `${name}.train.f64`),
      test: path.join(tmp, `${name}.test.f64`),
    };
    writeSplit(takeTrainingData(data, idx.train), meta.train);
    writeSplit(takeTrainingData(data, idx.test), meta.test);
    writeFileSync(path.join(tmp, `${name}.json`), JSON.stringify(meta));
    cases.push({ meta, algorithms, seeds: nSeeds, metric: data.task === 'classification' ? 'accuracy' : 'R2' });
  };
  const wanted = (name: string): boolean => only === undefined || only === name;
  for (const spec of specs) if (wanted(spec.name)) write(spec.name, loadCsv(spec), ['random_forest', 'hist_gradient_boosting'], seeds);
  if (!process.argv.includes('--no-1m') && wanted('synthetic_1m_x20')) {
    write('synthetic_1m_x20', synthetic1m(), process.argv.includes('--forest-1m') ? ['random_forest', 'hist_gradient_boosting'] : ['hist_gradient_boosting'], 1);
  }
  if (cases.length === 0) throw new Error(`no dataset named ${only}`);

  const head = ['dataset', 'algorithm', 'metric', 'sk score', 'our score', 'diff', 'sk fit s', 'our fit s', 'fit ratio', 'sk cpu s', 'our cpu s', 'sk RSS MiB', 'our RSS MiB', 'RSS ratio'];
  const body: string[][] = [];
  try {
    for (const c of cases) {
      const metaFile = path.join(tmp, `${c.meta.name}.json`);
      for (const algorithm of c.algorithms.filter((a) => onlyAlgorithm === undefined || a === onlyAlgorithm)) {
        const sk = runSide(python, [path.resolve(import.meta.dirname, 'sklearn_fit.py'), metaFile, algorithm, String(c.seeds)], {
          OMP_NUM_THREADS: String(skThreads),
          SK_N_JOBS: String(skThreads),
        });
        const ours = runSide(process.execPath, ['--import', 'tsx', path.resolve(import.meta.filename), '--row', metaFile, algorithm, String(c.seeds), '--jobs', String(jobs)], {});
        const row = [
          c.meta.name,
          algorithm,
          c.metric,
          mean(sk.scores).toFixed(4),
          mean(ours.scores).toFixed(4),
          (mean(ours.scores) - mean(sk.scores)).toFixed(4),
          median(sk.fitSeconds).toFixed(3),
          median(ours.fitSeconds).toFixed(3),
          (median(ours.fitSeconds) / median(sk.fitSeconds)).toFixed(2),
          median(sk.cpuSeconds).toFixed(2),
          median(ours.cpuSeconds).toFixed(2),
          sk.maxRssMiB.toFixed(0),
          ours.maxRssMiB.toFixed(0),
          (ours.maxRssMiB / sk.maxRssMiB).toFixed(2),
        ];
        body.push(row);
        process.stderr.write(`${row.join('  ')}\n`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const line = (cells: string[]): string => cells.map((s, c) => s.padEnd(widths[c]!)).join('  ');
  console.log(`our workers: ${jobs}, scikit-learn threads: ${skThreads}, cores: ${os.availableParallelism()}, seeds per row: ${seeds} (1M row: 1)`);
  console.log(line(head));
  for (const b of body) console.log(line(b));
}

await main();
