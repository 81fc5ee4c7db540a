/**
 * TypeBox schemas of the native tracking endpoints (API.md "Training, datasets, experiments").
 * Native shapes use snake_case and ISO-8601 times; non-finite metric values are the strings
 * `NaN`, `Infinity` and `-Infinity` (as MLflow's JSON does), since JSON has no such numbers.
 */
import { Type, type Static } from '@sinclair/typebox';
import { PageQuery } from '../platform/schemas.ts';
import { LIMITS } from './validation.ts';

export const MetricValue = Type.Union([Type.Number(), Type.String({ description: "'NaN', 'Infinity' or '-Infinity'" })], {
  description: 'a number, or one of the strings NaN, Infinity, -Infinity',
});

const IsoTime = Type.String({ format: 'date-time' });
const NullableIsoTime = Type.Union([IsoTime, Type.Null()]);
const StringMap = Type.Record(Type.String(), Type.String());

export const ViewTypeQuery = Type.Union(
  ['active_only', 'deleted_only', 'all', 'ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'].map((v) => Type.Literal(v)),
  { description: 'which lifecycle stages to list (default active_only)', default: 'active_only' },
);

export const ExperimentView = Type.Object(
  {
    experiment_id: Type.String({ description: 'numeric string, as MLflow' }),
    name: Type.String(),
    artifact_location: Type.String(),
    lifecycle_stage: Type.Union([Type.Literal('active'), Type.Literal('deleted')]),
    creation_time: IsoTime,
    last_update_time: IsoTime,
    tags: StringMap,
    run_count: Type.Integer({ description: 'active runs' }),
    best_run: Type.Union(
      [
        Type.Object({
          run_id: Type.String(),
          run_name: Type.String(),
          metric: Type.Union([Type.Object({ key: Type.String(), value: MetricValue, goal: Type.Union([Type.Literal('max'), Type.Literal('min')]) }), Type.Null()]),
        }),
        Type.Null(),
      ],
      {
        description:
          'the best active run: by the experiment tag modelplane.primary_metric if set, else the first of accuracy, f1, roc_auc, r2 (highest) or rmse, mae, mse, log_loss, loss (lowest) that a finished or running run has; else the latest run',
      },
    ),
  },
  { $id: 'TrackingExperiment', title: 'Experiment' },
);

const DatasetView = Type.Object({ name: Type.String(), version: Type.Integer(), digest: Type.String() });
const ModelVersionRef = Type.Object({ name: Type.String(), version: Type.Integer() });

export const RunView = Type.Object(
  {
    run_id: Type.String(),
    run_name: Type.String(),
    experiment_id: Type.String(),
    status: Type.String({ description: 'RUNNING, SCHEDULED, FINISHED, FAILED or KILLED' }),
    start_time: NullableIsoTime,
    end_time: NullableIsoTime,
    lifecycle_stage: Type.Union([Type.Literal('active'), Type.Literal('deleted')]),
    artifact_uri: Type.String(),
    user_id: Type.String(),
    params: StringMap,
    metrics: Type.Record(Type.String(), MetricValue, { description: 'latest value of each metric' }),
    tags: StringMap,
    dataset: Type.Union([DatasetView, Type.Null()]),
    model_versions: Type.Array(ModelVersionRef, { description: 'registered model versions this run produced' }),
  },
  { $id: 'TrackingRun', title: 'Run' },
);

export const RunDetailView = Type.Composite(
  [
    RunView,
    Type.Object({
      deleted_time: NullableIsoTime,
      latest_metrics: Type.Array(Type.Object({ key: Type.String(), value: MetricValue, step: Type.Integer(), timestamp: IsoTime })),
      artifacts: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer() }), { description: 'files under the run artifact root (first 1000)' }),
      artifacts_truncated: Type.Boolean(),
    }),
  ],
  { $id: 'TrackingRunDetail', title: 'RunDetail' },
);

export const MetricPoint = Type.Object({ value: MetricValue, step: Type.Integer(), timestamp: IsoTime });

export const ExperimentParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: LIMITS.experimentNameLength, description: 'experiment name (or numeric id)' }) });
export const RunParams = Type.Composite([ExperimentParams, Type.Object({ run_id: Type.String({ minLength: 1, maxLength: 64 }) })]);
export const RunIdParams = Type.Object({ run_id: Type.String({ minLength: 1, maxLength: 64 }) });

const OrderBy = Type.Array(Type.String({ maxLength: 1000 }), {
  maxItems: 20,
  description: "order_by clauses such as 'metrics.accuracy DESC' or 'start_time'; repeat the parameter or separate with commas",
});

export const ListExperimentsQuery = Type.Composite([
  PageQuery,
  Type.Object({
    view_type: Type.Optional(ViewTypeQuery),
    filter: Type.Optional(Type.String({ maxLength: 4000, description: "MLflow grammar over name, creation_time, last_update_time and tags.x, e.g. name LIKE 'iris%'" })),
    order_by: Type.Optional(OrderBy),
  }),
]);

export const ListRunsQuery = Type.Composite([
  PageQuery,
  Type.Object({
    view_type: Type.Optional(ViewTypeQuery),
    filter: Type.Optional(
      Type.String({ maxLength: 4000, description: "MLflow filter grammar, e.g. metrics.accuracy > 0.9 and params.max_depth = '8'" }),
    ),
    order_by: Type.Optional(OrderBy),
  }),
]);

export const CreateExperimentBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: LIMITS.experimentNameLength }),
    artifact_location: Type.Optional(Type.String({ maxLength: 2000 })),
    tags: Type.Optional(StringMap),
  },
  { additionalProperties: false },
);

export const UpdateExperimentBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: LIMITS.experimentNameLength, description: 'new name' })),
    tags: Type.Optional(StringMap),
  },
  { additionalProperties: false },
);

// Integer first: with Ajv's type coercion an earlier string branch would turn numbers into strings.
const TimeInput = Type.Union([Type.Integer({ description: 'ms since the epoch' }), IsoTime]);

export const CreateRunBody = Type.Object(
  {
    run_name: Type.Optional(Type.String({ maxLength: LIMITS.runNameLength })),
    start_time: Type.Optional(TimeInput),
    tags: Type.Optional(StringMap),
    create_experiment: Type.Optional(Type.Boolean({ description: 'create the experiment when it does not exist', default: false })),
  },
  { additionalProperties: false },
);

export const UpdateRunBody = Type.Object(
  {
    status: Type.Optional(Type.Union(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'].map((s) => Type.Literal(s)))),
    end_time: Type.Optional(Type.Union([TimeInput, Type.Null()])),
    run_name: Type.Optional(Type.String({ maxLength: LIMITS.runNameLength })),
  },
  { additionalProperties: false },
);

const ParamValueInput = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

export const LogBody = Type.Object(
  {
    params: Type.Optional(
      Type.Union([Type.Record(Type.String(), ParamValueInput), Type.Array(Type.Object({ key: Type.String(), value: ParamValueInput }, { additionalProperties: false }))], {
        description: 'immutable once logged; numbers and booleans are stored as their string form',
      }),
    ),
    metrics: Type.Optional(
      Type.Array(
        Type.Object(
          {
            key: Type.String(),
            value: Type.Union([Type.Number(), Type.String({ pattern: '^(?:[Nn]a[Nn]|-?[Ii]nf(?:inity)?)$' })]),
            step: Type.Optional(Type.Integer({ default: 0 })),
            timestamp: Type.Optional(TimeInput),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    tags: Type.Optional(Type.Union([StringMap, Type.Array(Type.Object({ key: Type.String(), value: Type.String() }, { additionalProperties: false }))])),
  },
  { additionalProperties: false },
);

export type ListRunsQueryT = Static<typeof ListRunsQuery>;
export type LogBodyT = Static<typeof LogBody>;
