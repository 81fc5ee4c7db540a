/**
 * `GET /train/algorithms`: the built-in algorithms and the `params` each accepts, as JSON Schema
 * with the defaults the trainers use, so a client (the web UI's training form) can build its form
 * from the server's own rules instead of a copy of them. `POST /train` validates against the same
 * schemas.
 */
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { AUTH_ERRORS, errorResponses } from '../platform/schemas.ts';
import type { Task } from '../ml/types.ts';
import { ALGORITHMS, ALGORITHM_PARAMS, ALGORITHM_TASK, defaultsFor, paramEntries, type ParamValue } from './pipeline-params.ts';
import { DEFAULT_SEED, DEFAULT_TEST_SIZE } from './train-request.ts';

const TaskValue = Type.Union([Type.Literal('classification'), Type.Literal('regression')]);
const ParamDefault = Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Null()]);

const AlgorithmsReply = Type.Object(
  {
    algorithms: Type.Array(
      Type.Object({
        name: Type.String({ description: 'the value of `algorithm` in POST /train' }),
        tasks: Type.Array(TaskValue, { description: 'tasks the algorithm can learn' }),
        params_schema: Type.Object({}, { additionalProperties: true, description: 'JSON Schema of `params` (type, ranges, enumerations, descriptions)' }),
        defaults: Type.Object(
          { classification: Type.Optional(Type.Record(Type.String(), ParamDefault)), regression: Type.Optional(Type.Record(Type.String(), ParamDefault)) },
          { description: 'the value each parameter takes when not given, per task (seeds: the validation seed, default shown)' },
        ),
      }),
    ),
    validation: Type.Object({
      test_size: Type.Number({ description: 'default share of rows held out' }),
      seed: Type.Integer({ description: 'default split seed' }),
      stratify: Type.Boolean({ description: 'default for classification' }),
    }),
  },
  { title: 'TrainingAlgorithms' },
);

/** A TypeBox schema as plain JSON Schema (TypeBox marks its objects with symbol keys). */
function plainSchema(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function describeAlgorithms() {
  return {
    algorithms: ALGORITHMS.map((name) => {
      const only = ALGORITHM_TASK[name];
      const tasks: Task[] = only === undefined ? ['classification', 'regression'] : [only];
      const defaults: Partial<Record<Task, Record<string, ParamValue>>> = {};
      for (const task of tasks) defaults[task] = Object.fromEntries(paramEntries(defaultsFor(name, task, DEFAULT_SEED)));
      return { name, tasks, params_schema: plainSchema(ALGORITHM_PARAMS[name]), defaults };
    }),
    validation: { test_size: DEFAULT_TEST_SIZE, seed: DEFAULT_SEED, stratify: true },
  };
}

/** The algorithm catalogue route (read). */
export async function algorithmRoutes(app: App): Promise<void> {
  const catalogue = describeAlgorithms();
  app.get(
    '/train/algorithms',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Built-in algorithms with the JSON Schema and defaults of their params',
        description: 'What `POST /train` accepts as `algorithm` and `params`: per algorithm the tasks it learns, the params schema (ranges, enumerations) and each default.',
        tags: ['training'],
        response: { 200: AlgorithmsReply, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => catalogue,
  );
}
