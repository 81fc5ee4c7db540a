/** Request and response schemas of the prediction routes (OpenAPI and tests). */
import { Type, type Static } from '@sinclair/typebox';

const StageSchema = Type.Union([Type.Literal('None'), Type.Literal('Staging'), Type.Literal('Production'), Type.Literal('Archived')]);

export const ModelQuerySchema = Type.Object({
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'registered model name; default MODEL_NAME or MODEL_PATH' })),
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'version number (at most one of version, stage, alias)' })),
  stage: Type.Optional(StageSchema),
  alias: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
});

/** `?explain=true` of the prediction routes (not of `/invocations`). */
export const ExplainFlag = Type.Optional(
  Type.Boolean({
    description:
      'add per-row Shapley contributions of each feature and the base value they start from (at most 100 rows; no prediction cache); ' +
      'explains the predicted value (regression) or the probability of the predicted class (classification); needs the version\'s training reference',
  }),
);

/** Query of `/predict`, `/predict/batch` and `/batch-predict`: the model selector plus `explain`. */
export const PredictQuerySchema = Type.Object({ ...ModelQuerySchema.properties, explain: ExplainFlag });

export const Label = Type.Union([Type.Number(), Type.String()]);
const Contributions = Type.Optional(
  Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]), {
    description:
      '?explain=true: per feature, its share of prediction - base_value (interventional Shapley value); for classifiers, of the predicted class\'s probability',
  }),
);
const BaseValue = Type.Optional(
  Type.Union([Type.Number(), Type.Null()], { description: '?explain=true: mean explained output (value, or predicted class probability) over the background rows' }),
);
const Prediction = Type.Union([Type.Number(), Type.String(), Type.Array(Type.Number())], { description: 'class label (number or string) or regression value(s)' });

export const SinglePredictionSchema = Type.Object(
  {
    prediction: Prediction,
    probability: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.Null()]))),
    classes: Type.Optional(Type.Array(Label)),
    confidence: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    contributions: Contributions,
    base_value: BaseValue,
    model_name: Type.String(),
    model_version: Type.String(),
    stage: Type.Union([Type.String(), Type.Null()]),
    processing_time_ms: Type.Number(),
    features_processed: Type.Integer(),
    cached: Type.Boolean(),
    timestamp: Type.String({ format: 'date-time' }),
    request_id: Type.String(),
  },
  { additionalProperties: false },
);

export const BatchPredictionSchema = Type.Object(
  {
    predictions: Type.Array(
      Type.Object(
        {
          prediction: Prediction,
          probability: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.Null()]))),
          confidence: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
          contributions: Contributions,
          base_value: BaseValue,
        },
        { additionalProperties: false },
      ),
    ),
    count: Type.Integer(),
    model_name: Type.String(),
    model_version: Type.String(),
    processing_time_ms: Type.Number(),
  },
  { additionalProperties: false },
);

export const SingleBody = Type.Object(
  {},
  {
    additionalProperties: true,
    description:
      'One row: {"features": [v1, ..., vn]} in model order, {"features": {"name": v}}, or the named features at the top level. Values are finite numbers (category strings for categorical features).',
    examples: [{ features: [5.1, 3.5, 1.4, 0.2] }],
  },
);
export const BatchBody = Type.Object(
  {},
  {
    additionalProperties: true,
    description: 'Many rows: {"records": [row, ...]} (rows as objects or arrays), {"features_list": [[...], ...]} or {"instances": [...]}; 1..MAX_BATCH_SIZE rows.',
    examples: [{ records: [{ f0: 1, f1: 2 }] }],
  },
);

export type ModelQueryType = Static<typeof ModelQuerySchema>;


/** Route config of the prediction routes. */
export const PREDICT_ROUTE = { role: 'predict' as const };
