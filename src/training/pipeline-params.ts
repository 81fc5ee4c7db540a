/**
 * Hyper-parameters of the built-in algorithms as the API accepts them: one TypeBox schema per
 * algorithm (names and defaults follow scikit-learn, like the trainers in `src/ml/`), validation
 * with errors that name the parameter, and the effective parameter set (request values over
 * defaults) that is both passed to the trainer and logged to the run, so what a run shows is
 * exactly what was fitted.
 */
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Task } from '../ml/types.ts';
import { badRequest, invalidField, type FieldError } from '../platform/errors.ts';

export const ALGORITHMS = ['logistic_regression', 'linear_regression', 'decision_tree', 'random_forest', 'gradient_boosting'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** An effective parameter value (what a trainer receives and a run logs). */
export type ParamValue = number | string | boolean | null;

const MaxDepth = Type.Union([Type.Integer({ minimum: 1, maximum: 1000 }), Type.Null()], { description: 'maximum depth; null = unlimited' });
const Fraction = Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 });
const MinSamplesSplit = Type.Union([Type.Integer({ minimum: 2 }), Fraction], { description: 'integer >= 2, or a fraction of the rows in (0, 1)' });
const MinSamplesLeaf = Type.Union([Type.Integer({ minimum: 1 }), Fraction], { description: 'integer >= 1, or a fraction of the rows in (0, 1)' });
const MaxFeatures = Type.Union([Type.Literal('sqrt'), Type.Literal('log2'), Type.Null(), Type.Number({ exclusiveMinimum: 0 })], {
  description: "'sqrt', 'log2', null (all), a fraction in (0, 1] or a count > 1",
});
const Criterion = Type.Union([Type.Literal('gini'), Type.Literal('entropy'), Type.Literal('squared_error')], {
  description: 'gini or entropy (classification), squared_error (regression)',
});
const Seed = Type.Integer({ minimum: 0, maximum: 0x7fffffff, description: 'default: the validation seed' });

const opt = <T extends TSchema>(s: T) => Type.Optional(s);

const LogisticRegressionParams = Type.Object(
  {
    C: opt(Type.Number({ exclusiveMinimum: 0, description: 'inverse L2 strength (default 1)' })),
    max_iter: opt(Type.Integer({ minimum: 1, maximum: 100_000, description: 'L-BFGS iterations (default 100)' })),
    tol: opt(Type.Number({ minimum: 0, description: 'gradient tolerance (default 1e-4)' })),
    multi_class: opt(Type.Union([Type.Literal('auto'), Type.Literal('multinomial')])),
    fit_intercept: opt(Type.Boolean()),
  },
  { additionalProperties: false },
);

const LinearRegressionParams = Type.Object(
  {
    alpha: opt(Type.Number({ minimum: 0, description: 'L2 penalty; 0 = ordinary least squares (default)' })),
    fit_intercept: opt(Type.Boolean()),
  },
  { additionalProperties: false },
);

const DecisionTreeParams = Type.Object(
  {
    criterion: opt(Criterion),
    max_depth: opt(MaxDepth),
    min_samples_split: opt(MinSamplesSplit),
    min_samples_leaf: opt(MinSamplesLeaf),
    max_features: opt(MaxFeatures),
    seed: opt(Seed),
  },
  { additionalProperties: false },
);

const NJobs = Type.Union([Type.Integer({ minimum: -1, maximum: 256 }), Type.Null()], {
  description: "threads building trees; null = the process's default (the cores less one shared by a serving process's jobs, all cores on modelplane worker, or TRAINING_THREADS), -1 = all cores",
});

const RandomForestParams = Type.Object(
  {
    n_estimators: opt(Type.Integer({ minimum: 1, maximum: 10_000, description: 'trees (default 100)' })),
    criterion: opt(Criterion),
    max_depth: opt(MaxDepth),
    min_samples_split: opt(MinSamplesSplit),
    min_samples_leaf: opt(MinSamplesLeaf),
    max_features: opt(MaxFeatures),
    bootstrap: opt(Type.Boolean()),
    seed: opt(Seed),
    n_jobs: opt(NJobs),
  },
  { additionalProperties: false },
);

const GradientBoostingParams = Type.Object(
  {
    learning_rate: opt(Type.Number({ exclusiveMinimum: 0, maximum: 10 })),
    max_iter: opt(Type.Integer({ minimum: 1, maximum: 100_000 })),
    max_leaf_nodes: opt(Type.Union([Type.Integer({ minimum: 2, maximum: 1_000_000 }), Type.Null()])),
    max_depth: opt(MaxDepth),
    min_samples_leaf: opt(Type.Integer({ minimum: 1 })),
    l2_regularization: opt(Type.Number({ minimum: 0 })),
    max_bins: opt(Type.Integer({ minimum: 2, maximum: 255 })),
    early_stopping: opt(Type.Union([Type.Literal('auto'), Type.Boolean()])),
    validation_fraction: opt(Fraction),
    n_iter_no_change: opt(Type.Integer({ minimum: 1 })),
    tol: opt(Type.Number({ minimum: 0 })),
    seed: opt(Seed),
    n_jobs: opt(NJobs),
  },
  { additionalProperties: false },
);

/** Accepted `params` of each algorithm. */
export const ALGORITHM_PARAMS = {
  logistic_regression: LogisticRegressionParams,
  linear_regression: LinearRegressionParams,
  decision_tree: DecisionTreeParams,
  random_forest: RandomForestParams,
  gradient_boosting: GradientBoostingParams,
} as const satisfies Readonly<Record<Algorithm, TObject>>;

/** Every parameter of one algorithm, defaults filled in, tagged with the algorithm. */
type Effective<A extends Algorithm> = { readonly algorithm: A } & { readonly [K in keyof Static<(typeof ALGORITHM_PARAMS)[A]>]-?: Exclude<Static<(typeof ALGORITHM_PARAMS)[A]>[K], undefined> };

/**
 * The effective hyper-parameters of a job, one member per algorithm: what the trainer receives
 * and what the run logs (request values over the trainers' defaults).
 */
export type AlgorithmParams = { [A in Algorithm]: Effective<A> }[Algorithm];

/** The task an algorithm is limited to, if any. */
export const ALGORITHM_TASK: Readonly<Partial<Record<Algorithm, Task>>> = {
  logistic_regression: 'classification',
  linear_regression: 'regression',
};

/** Defaults, the trainers' own, resolved for a task and seed. */
export function defaultsFor(algorithm: Algorithm, task: Task, seed: number): AlgorithmParams {
  const criterion = task === 'classification' ? 'gini' : 'squared_error';
  switch (algorithm) {
    case 'logistic_regression':
      return { algorithm, C: 1, max_iter: 100, tol: 1e-4, multi_class: 'auto', fit_intercept: true };
    case 'linear_regression':
      return { algorithm, alpha: 0, fit_intercept: true };
    case 'decision_tree':
      return { algorithm, criterion, max_depth: null, min_samples_split: 2, min_samples_leaf: 1, max_features: null, seed };
    case 'random_forest':
      return {
        algorithm,
        n_estimators: 100,
        criterion,
        max_depth: null,
        min_samples_split: 2,
        min_samples_leaf: 1,
        max_features: task === 'classification' ? 'sqrt' : 1,
        bootstrap: true,
        seed,
        n_jobs: null,
      };
    case 'gradient_boosting':
      return {
        algorithm,
        learning_rate: 0.1,
        max_iter: 100,
        max_leaf_nodes: 31,
        max_depth: null,
        min_samples_leaf: 20,
        l2_regularization: 0,
        max_bins: 255,
        early_stopping: 'auto',
        validation_fraction: 0.1,
        n_iter_no_change: 10,
        tol: 1e-7,
        seed,
        n_jobs: null,
      };
  }
}

/**
 * Checks `params` against the algorithm's schema and the task, and returns the effective set
 * (every parameter, defaults filled in). Unknown names are one 400 naming all of them; a bad
 * value is a 400 at `/body/params/<name>`.
 * @throws AppError 400
 */
export function resolveParams(algorithm: Algorithm, task: Task, given: Readonly<Record<string, unknown>> | undefined, seed: number): AlgorithmParams {
  const schema: TObject = ALGORITHM_PARAMS[algorithm];
  const params = given ?? {};
  const known = Object.keys(schema.properties);
  const unknown = Object.keys(params).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw badRequest(
      `unknown parameter${unknown.length > 1 ? 's' : ''} for ${algorithm}: ${unknown.join(', ')} (accepted: ${known.join(', ')})`,
      unknown.map((k) => ({ path: `/body/params/${k}`, message: `is not a parameter of ${algorithm}` })),
    );
  }
  const errors: FieldError[] = [];
  for (const e of Value.Errors(schema, params)) {
    // A union reports every branch; one message per parameter is enough.
    const path = `/body/params${e.path}`;
    if (!errors.some((x) => x.path === path)) errors.push({ path, message: describeError(e.path, e.message, schema) });
  }
  const first = errors[0];
  if (first !== undefined) throw badRequest(`invalid parameter ${first.path.slice('/body/params/'.length)}: ${first.message}`, errors);
  const criterion = params['criterion'];
  if (criterion !== undefined) {
    const fits = task === 'classification' ? criterion === 'gini' || criterion === 'entropy' : criterion === 'squared_error';
    if (!fits) {
      throw invalidField('/body/params/criterion', `${JSON.stringify(criterion)} does not fit a ${task} task (use ${task === 'classification' ? 'gini or entropy' : 'squared_error'})`);
    }
  }
  if (params['n_jobs'] === 0) throw invalidField('/body/params/n_jobs', 'must be -1 (all cores), a positive count or null');
  // Checked against the algorithm's schema above, so the merge is that algorithm's member.
  return { ...defaultsFor(algorithm, task, seed), ...params };
}

/** The parameters to log to a run, in the trainer's order (the algorithm is logged on its own). */
export function paramEntries(params: AlgorithmParams): [string, ParamValue][] {
  return Object.entries(params).filter(([key]) => key !== 'algorithm') as [string, ParamValue][];
}

function describeError(path: string, message: string, schema: TObject): string {
  const prop = schema.properties[path.slice(1)];
  const description = (prop as { description?: string } | undefined)?.description;
  return description === undefined ? message : `${message} (${description})`;
}
