/**
 * MLflow's scoring endpoint, `POST /invocations`: `dataframe_split`, `dataframe_records`,
 * `instances` or `inputs` (plus optional `params`) as JSON, or `text/csv` with a header row.
 * Answers `{"predictions": [...]}` with one label (or value) per row, and errors in MLflow's shape
 * `{"error_code", "message"}` so MLflow clients read them.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { AnsweredHook } from '../platform/metrics.ts';
import type { App } from '../platform/app-type.ts';
import { toAppError } from '../platform/error-handler.ts';
import { AppError } from '../platform/errors.ts';
import { AUTH_ERRORS } from '../platform/schemas.ts';
import { readColumnDict, readColumnar, readCsvRecords, readRowList, type ModelRows } from './input.ts';
import { LoadedModel, labelOnlyJson, runRows } from './loaded-model.ts';
import type { ServingMetrics } from './metrics.ts';
import { ModelQuerySchema, PREDICT_ROUTE } from './serving.schemas.ts';
import type { ModelQuery, ServingService } from './serving.service.ts';

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

export interface InvocationDeps {
  readonly service: ServingService;
  readonly metrics: ServingMetrics;
  readonly maxBatchSize: number;
  /** The route's prediction counters (`config.answered`). */
  readonly answered: AnsweredHook;
}

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

/** Registers `/invocations` in its own scope (its CSV parser and MLflow error shape stay local). */
export async function invocationRoutes(app: App, deps: InvocationDeps): Promise<void> {
  const { service, maxBatchSize } = deps;
  await app.register(async (scope) => {
    scope.addContentTypeParser('text/csv', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    scope.post(
      '/invocations',
      {
        config: { ...PREDICT_ROUTE, answered: deps.answered },
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
        errorHandler: (err, request, reply) => {
          const e = toAppError(err);
          if (e === undefined) request.log.error({ err }, 'unexpected error');
          const status = e?.status ?? 500;
          app.metricsHooks?.onError(request, e?.code ?? 'internal_error');
          if (e?.headers !== undefined) void reply.headers(e.headers);
          const message = e === undefined ? `unexpected error; quote request id ${request.id} when reporting it` : e.message;
          void (reply as FastifyReply)
            .code(status)
            .type('application/json; charset=utf-8')
            .send(JSON.stringify({ error_code: MLFLOW_CODES[status] ?? 'INTERNAL_ERROR', message }));
        },
      },
      async (request, reply) => {
        const picked = service.pick(request.query as ModelQuery);
        const model = picked instanceof LoadedModel ? picked : await picked;
        const body: unknown = request.body;
        let rows: ModelRows;
        if (typeof body === 'string') {
          let records: string[][];
          try {
            const parsed: unknown = parseCsv(body, { skip_empty_lines: true, trim: true, relax_column_count: true });
            records = parsed as string[][];
          } catch (err) {
            throw bad(`the CSV body cannot be parsed: ${(err as Error).message}`);
          }
          rows = readCsvRecords(records, model, maxBatchSize);
        } else {
          rows = readMlflowJson(body, model, maxBatchSize);
        }
        model.inFlight++;
        let out;
        try {
          out = await runRows(model, rows.input, rows.rows);
        } finally {
          model.inFlight--;
        }
        model.predictions += rows.rows;
        service.usage.predictions += rows.rows;
        deps.metrics.predictions.labels(model.identity.name, model.identity.version, 'batch').inc(rows.rows);
        let text = '{"predictions":[';
        for (let i = 0; i < rows.rows; i++) text += (i === 0 ? '' : ',') + labelOnlyJson(model, out.outputs, out.offset + i);
        return reply.type('application/json; charset=utf-8').send(`${text}]}` as never);
      },
    );
  });
}
