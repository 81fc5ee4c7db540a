import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { invalidField } from '../platform/errors.ts';
import { AUTH_ERRORS, errorResponses, pageProperties } from '../platform/schemas.ts';
import { MAX_WINDOW, parseSince, type DriftService, type LoggedPrediction, type ReportQuery } from './drift.service.ts';

const TAGS = ['drift'];

const ModelParams = Type.Object({ model: Type.String({ minLength: 1, maxLength: 1024 }) });

const ReportQuerySchema = Type.Object({
  window: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_WINDOW, description: 'latest logged rows (default DRIFT_WINDOW)' })),
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'rows logged in the last duration (30m, 1h, 7d) or since an ISO-8601 time; wins over window' })),
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'model version; default: the version of the latest logged row' })),
  method: Type.Optional(Type.Literal('psi', { description: 'psi: population stability index on the reference bins instead of the default tests' })),
});

const CheckQuerySchema = Type.Object({
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'model version; default: the newest with a reference' })),
  method: Type.Optional(Type.Literal('psi')),
});

const CheckBody = Type.Object(
  {
    records: Type.Array(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Array(Type.Unknown())]), {
      minItems: 1,
      maxItems: MAX_WINDOW,
      description: 'rows: objects by feature name, or arrays in the model feature order',
    }),
  },
  { additionalProperties: false },
);

const ReferenceBody = Type.Object(
  {
    dataset: Type.String({ minLength: 1, maxLength: 128, description: 'dataset name' }),
    dataset_version: Type.Optional(Type.Integer({ minimum: 1, description: 'default: latest' })),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'model version; default: newest' })),
  },
  { additionalProperties: false },
);

const FeatureReply = Type.Object(
  {
    feature: Type.String(),
    type: Type.String(),
    method: Type.Union([Type.String(), Type.Null()], { description: 'ks, chisquare, z, wasserstein, jensenshannon or psi; null when there was nothing to test' }),
    statistic: Type.Union([Type.Number(), Type.Null()]),
    p_value: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    threshold: Type.Number(),
    drifted: Type.Boolean(),
    null_rate: Type.Number(),
    reference_null_rate: Type.Number(),
    unseen_rate: Type.Union([Type.Number(), Type.Null()]),
    current_count: Type.Integer(),
    note: Type.Optional(Type.String()),
    distribution: Type.Object({ labels: Type.Array(Type.String()), reference: Type.Array(Type.Number()), current: Type.Array(Type.Number()) }),
  },
  { additionalProperties: true },
);

const ReportReply = Type.Object(
  {
    model: Type.String(),
    version: Type.String(),
    computed_at: Type.String({ format: 'date-time' }),
    status: Type.Union([Type.Literal('ok'), Type.Literal('not_enough_data')]),
    message: Type.Optional(Type.String()),
    window: Type.Object({ rows: Type.Optional(Type.Integer()), since: Type.Optional(Type.String()), source: Type.String() }),
    current_rows: Type.Integer(),
    reference_rows: Type.Integer(),
    min_window: Type.Integer(),
    share_threshold: Type.Number(),
    share_drifted: Type.Union([Type.Number(), Type.Null()]),
    drifted_features: Type.Union([Type.Integer(), Type.Null()]),
    n_features: Type.Integer(),
    dataset_drift: Type.Union([Type.Boolean(), Type.Null()]),
    features: Type.Array(FeatureReply),
    reference: Type.Object({
      source: Type.String(),
      rows: Type.Integer(),
      dataset: Type.Union([Type.Object({ name: Type.String(), version: Type.Integer() }), Type.Null()]),
    }),
  },
  { additionalProperties: true },
);

const ReferenceReply = Type.Object({
  model: Type.String(),
  version: Type.String(),
  source: Type.String(),
  rows: Type.Integer(),
  features: Type.Integer(),
  dataset: Type.Union([Type.Object({ name: Type.String(), version: Type.Integer() }), Type.Null()]),
});

const HistoryQuery = Type.Object(pageProperties());

const PredictionsQuery = Type.Object({
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO-8601 time or a duration before now (1h, 7d)' })),
  until: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO-8601 time or a duration before now (exclusive)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'JSON: rows per page (default 100, at most 1000); exports: most rows (default every row of the range)' })),
  page_token: Type.Optional(Type.String({ maxLength: 512 })),
});

const LoggedReply = Type.Object({
  id: Type.Integer(),
  timestamp: Type.String({ format: 'date-time' }),
  model: Type.String(),
  version: Type.String(),
  request_id: Type.Union([Type.String(), Type.Null()]),
  kind: Type.String({ description: 'single, batch, invocations or explain' }),
  latency_ms: Type.Number(),
  inputs: Type.Record(Type.String(), Type.Unknown()),
  output: Type.Record(Type.String(), Type.Unknown()),
});

/** Most rows one export streams when `limit` does not say. */
const EXPORT_MAX_ROWS = 10_000_000;

/** `since`/`until` of `/predictions` as epoch ms. */
function timeBound(text: string | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isNaN(t)) return t;
  try {
    return Date.now() - parseSince(text);
  } catch {
    throw invalidField(`/querystring/${field}`, 'must be an ISO-8601 time or a duration such as 30m, 1h or 7d');
  }
}

function reportQuery(q: { window?: number; since?: string; version?: number; method?: 'psi' }): ReportQuery {
  let sinceMs: number | undefined;
  if (q.since !== undefined) {
    try {
      sinceMs = parseSince(q.since);
    } catch {
      throw invalidField('/querystring/since', 'must be a duration such as 30m, 1h or 7d, or an ISO-8601 time');
    }
  }
  return {
    ...(q.window === undefined ? {} : { window: q.window }),
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(q.version === undefined ? {} : { version: q.version }),
    ...(q.method === undefined ? {} : { method: q.method }),
  };
}

const CSV_META = ['id', 'timestamp', 'model', 'version', 'request_id', 'kind', 'latency_ms'] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV lines of logged predictions: the meta columns, one column per input feature (the first
 * page's features: an export is usually one model's), `prediction`, and the whole answer as JSON.
 */
async function* csvLines(pages: AsyncGenerator<LoggedPrediction[]>): AsyncGenerator<string> {
  let features: string[] | undefined;
  for await (const page of pages) {
    let text = '';
    for (const p of page) {
      if (features === undefined) {
        features = Object.keys(p.inputs);
        text += [...CSV_META, ...features, 'prediction', 'output'].map(csvCell).join(',') + '\n';
      }
      const cells = [p.id, p.timestamp, p.model, p.version, p.request_id, p.kind, p.latency_ms, ...features.map((f) => p.inputs[f]), p.output['prediction'], p.output];
      text += cells.map(csvCell).join(',') + '\n';
    }
    yield text;
  }
  if (features === undefined) yield [...CSV_META, 'prediction', 'output'].join(',') + '\n';
}

async function* ndjsonLines(pages: AsyncGenerator<LoggedPrediction[]>): AsyncGenerator<string> {
  for await (const page of pages) {
    let text = '';
    for (const p of page) text += JSON.stringify(p) + '\n';
    yield text;
  }
}

/** Drift reports, references and the prediction log (API.md "Drift"). */
export async function driftRoutes(app: App, drift: DriftService): Promise<void> {
  app.get(
    '/drift/:model',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Drift report over the latest window of logged predictions',
        description: 'Per feature: test method, statistic, p-value where the test has one, threshold, decision, null rate and unseen-category rate; with the share of drifted features and dataset drift. Fewer rows than DRIFT_MIN_WINDOW give status not_enough_data.',
        tags: TAGS,
        params: ModelParams,
        querystring: ReportQuerySchema,
        response: { 200: ReportReply, ...errorResponses(400, 404, 409, ...AUTH_ERRORS) },
      },
    },
    async (request) => drift.reportAndPublish(request.params.model, reportQuery(request.query)),
  );

  app.post(
    '/drift/:model/check',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'Drift report for rows given in the body (not logged)',
        tags: TAGS,
        params: ModelParams,
        querystring: CheckQuerySchema,
        body: CheckBody,
        response: { 200: ReportReply, ...errorResponses(400, 404, 409, 413, ...AUTH_ERRORS) },
      },
    },
    async (request) => drift.check(request.params.model, request.body.records, reportQuery(request.query)),
  );

  app.put(
    '/drift/:model/reference',
    {
      config: { role: 'train' },
      schema: {
        summary: "Set a model version's drift reference from a dataset version",
        description: "The model's features are summarised from the dataset's columns of the same names (quantile bins with overflow bins, a bounded sorted sample, mean, std, null rate; category frequencies). Trained models get their reference from the training split.",
        tags: TAGS,
        params: ModelParams,
        body: ReferenceBody,
        response: { 200: ReferenceReply, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => drift.setReferenceFromDataset(request.params.model, request.body),
  );

  app.get(
    '/drift/:model/history',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Reports stored by the periodic drift check, newest first',
        tags: TAGS,
        params: ModelParams,
        querystring: HistoryQuery,
        response: { 200: Type.Object({ reports: Type.Array(ReportReply), next_page_token: Type.Optional(Type.String()) }), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => drift.history(request.params.model, request.query.limit ?? 100, request.query.page_token),
  );

  app.get(
    '/predictions',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The prediction log, oldest first; Accept text/csv or application/x-ndjson exports a range',
        tags: TAGS,
        querystring: PredictionsQuery,
        response: {
          200: {
            description: 'JSON page, or with Accept text/csv / application/x-ndjson every row of the range',
            content: {
              'application/json': { schema: Type.Object({ predictions: Type.Array(LoggedReply), next_page_token: Type.Optional(Type.String()) }) },
              'text/csv': { schema: Type.String() },
              'application/x-ndjson': { schema: Type.String() },
            },
          },
          ...errorResponses(400, ...AUTH_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const since = timeBound(q.since, 'since');
      const until = timeBound(q.until, 'until');
      const filter = {
        ...(q.model === undefined ? {} : { model: q.model }),
        ...(q.version === undefined ? {} : { version: q.version }),
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
      };
      const accept = String(request.headers.accept ?? '');
      const format = accept.includes('text/csv') ? 'csv' : accept.includes('application/x-ndjson') ? 'ndjson' : 'json';
      if (format !== 'json') {
        const pages = drift.exportPredictions(filter, q.limit ?? EXPORT_MAX_ROWS);
        const lines = format === 'csv' ? csvLines(pages) : ndjsonLines(pages);
        return reply
          .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
          .header('content-disposition', `attachment; filename="predictions.${format === 'csv' ? 'csv' : 'ndjson'}"`)
          .send(Readable.from(lines) as never);
      }
      const limit = q.limit ?? 100;
      if (limit > 1000) throw invalidField('/querystring/limit', 'must be at most 1000 for JSON pages (exports take any limit)');
      const page = await drift.predictions(filter, limit, q.page_token);
      return { predictions: page.rows, ...(page.next_page_token === undefined ? {} : { next_page_token: page.next_page_token }) };
    },
  );
}
