/**
 * MLflow's scoring endpoint, `POST /invocations`: `dataframe_split`, `dataframe_records`,
 * `instances` or `inputs` (plus optional `params`) as JSON, or `text/csv` with a header row.
 * Answers `{"predictions": [...]}` with one label (or value) per row, and errors in MLflow's shape
 * `{"error_code", "message"}` so MLflow clients read them.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { AppError } from '../platform/errors.ts';
import { AUTH_ERRORS } from '../platform/schemas.ts';
import { readColumnDict, readColumnar, readCsvRecords, readRowList, type ModelRows } from './input.ts';
import type { LoadedModel } from './loaded-model.ts';
import type { PredictionService } from './prediction.service.ts';
import { ModelQuerySchema, PREDICT_ROUTE } from './serving.schemas.ts';

const MLFLOW_CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'RESOURCE_DOES_NOT_EXIST',
  413: 'BAD_REQUEST',
  415: 'BAD_REQUEST',
  429: 'REQUEST_LIMIT_EXCEEDED',
  503: 'TEMPORARILY_UNAVAILABLE',
};

const MlflowError = Type.Object({ error_code: Type.String(), message: Type.String() });

const FORMATS = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'] as const;


function bad(message: string, path = ''): AppError {
  return new AppError(400, 'validation_error', message, [{ path, message }]);
}

/** Rows of an MLflow JSON body. */
export function readMlflowJson(body: unknown, model: LoadedModel, maxRows: number): ModelRows {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad(`the body must be a JSON object with one of ${FORMATS.join(', ')}`);
  }
  const obj = body as Record<string, unknown>;
  const given = FORMATS.filter((f) => obj[f] !== undefined);
  const unknown = Object.keys(obj).filter((k) => k !== 'params' && !(FORMATS as readonly string[]).includes(k));
  if (given.length !== 1 || unknown.length > 0) {
    throw bad(
      `the body must hold exactly one of ${FORMATS.join(', ')} (plus optional params); got ${Object.keys(obj).join(', ') || 'nothing'}`,
      unknown.length > 0 ? `/${unknown[0]!}` : '',
    );
  }
  const format = given[0]!;
  const value = obj[format];
  switch (format) {
    case 'dataframe_split': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('dataframe_split must be an object {columns, data}', '/dataframe_split');
      const split = value as { columns?: unknown; data?: unknown };
      if (split.columns !== undefined && !Array.isArray(split.columns)) throw bad('dataframe_split.columns must be an array of names', '/dataframe_split/columns');
      return readColumnar(split.columns as unknown[] | undefined, split.data, model, maxRows, '/dataframe_split');
    }
    case 'dataframe_records':
      return readRowList(value, model, maxRows, '/dataframe_records');
    case 'instances':
    case 'inputs':
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return readColumnDict(value as Record<string, unknown>, model, maxRows, `/${format}`);
      return readRowList(value, model, maxRows, `/${format}`);
  }
}

/** MLflow's error body for `/invocations`: `{error_code, message}` with MLflow's code for the status. */
export function renderMlflowScoringError(error: AppError): { error_code: string; message: string } {
  return { error_code: MLFLOW_CODES[error.status] ?? 'INTERNAL_ERROR', message: error.message };
}

/** Rows of an `/invocations` body: JSON in one of MLflow's formats, or CSV text with a header row. */
function readInvocationRows(body: unknown, model: LoadedModel, maxRows: number): ModelRows {
  if (typeof body !== 'string') return readMlflowJson(body, model, maxRows);
  let records: string[][];
  try {
    const parsed: unknown = parseCsv(body, { skip_empty_lines: true, trim: true, relax_column_count: true });
    records = parsed as string[][];
  } catch (err) {
    throw bad(`the CSV body cannot be parsed: ${(err as Error).message}`);
  }
  return readCsvRecords(records, model, maxRows);
}

/** Registers `/invocations` in its own scope (its CSV parser stays local) with MLflow's error shape. */
export async function invocationRoutes(app: App, predictions: PredictionService): Promise<void> {
  app.addErrorFormat({ prefix: '/invocations', render: renderMlflowScoringError });
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.addContentTypeParser('text/csv', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    scope.post(
      '/invocations',
      {
        config: { ...PREDICT_ROUTE, answered: predictions.answered('/invocations') },
        schema: {
          summary: 'MLflow scoring: dataframe_split, dataframe_records, instances, inputs, or text/csv',
          tags: ['predictions'],
          querystring: ModelQuerySchema,
          body: Type.Union([Type.Object({}, { additionalProperties: true }), Type.String()], {
            description: 'exactly one of dataframe_split, dataframe_records, instances, inputs (plus optional params); or text/csv with a header row',
          }),
          response: {
            200: Type.Object({ predictions: Type.Array(Type.Union([Type.Number(), Type.String(), Type.Array(Type.Number())])) }),
            ...Object.fromEntries([400, 404, 413, 415, ...AUTH_ERRORS, 503].map((s) => [s, MlflowError])),
          },
        },
      },
      async (request, reply) => {
        const body: unknown = request.body;
        const text = await predictions.predictLabels(request.query, (model) => readInvocationRows(body, model, predictions.maxBatchSize), request.id);
        return reply.type('application/json; charset=utf-8').send(text as never);
      },
    );
  });
}
