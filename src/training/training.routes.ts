/**
 * Training job endpoints (API.md "Training, datasets, experiments"): submit, status, list,
 * cancel, logs.
 */
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { roleAllows } from '../platform/auth.ts';
import { forbidden } from '../platform/errors.ts';
import { AUTH_ERRORS, errorResponses, pageProperties } from '../platform/schemas.ts';
import { TrainRequest } from './job.types.ts';
import type { Job, JobsService } from './jobs.service.ts';
import { requiredRole } from './train-request.ts';

const TAGS = ['training'];
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

const JobStatusValue = Type.Union(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s)));

const JobView = Type.Object(
  {
    job_id: Type.String({ format: 'uuid' }),
    status: JobStatusValue,
    progress: Type.Object({ percent: Type.Number(), stage: Type.Union([Type.String(), Type.Null()]), message: Type.Union([Type.String(), Type.Null()]) }),
    run_id: Type.Union([Type.String(), Type.Null()]),
    experiment_name: Type.Union([Type.String(), Type.Null()]),
    model: Type.Union([Type.Object({ name: Type.String(), version: Type.Integer(), stage: Type.String() }), Type.Null()]),
    metrics: Type.Record(Type.String(), Type.Number()),
    error: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    kind: Type.String(),
    attempts: Type.Integer({ description: 'runs started so far (a retry after a transient failure is one more)' }),
    max_attempts: Type.Integer(),
    cancel_requested: Type.Boolean(),
  },
  { title: 'TrainingJob' },
);

function jobView(job: Job) {
  return {
    job_id: job.id,
    status: job.status,
    progress: { percent: job.progress.percent, stage: job.progress.stage, message: job.progress.message },
    run_id: job.runId,
    experiment_name: job.experimentName,
    model: job.result?.model ?? null,
    metrics: { ...(job.result?.metrics ?? {}) },
    error: job.error,
    created_at: new Date(job.createdAt).toISOString(),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    kind: job.kind,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    cancel_requested: job.cancelRequested,
  };
}

const JobParams = Type.Object({ job_id: Type.String({ format: 'uuid' }) });

/** Training routes over the jobs service. */
export async function trainingRoutes(app: App, jobs: JobsService): Promise<void> {
  app.post(
    '/train',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Submit a training job',
        description:
          'Everything that can be checked before training is checked here (dataset and version exist, target and feature columns exist, algorithm and params valid): 400/404 otherwise. Answers 202 with the job id; poll `status_url`. Promoting to Production needs the admin role.',
        tags: TAGS,
        body: TrainRequest,
        response: {
          202: Type.Object({ job_id: Type.String(), status: Type.Literal('queued'), status_url: Type.String() }),
          ...errorResponses(400, 404, 503, ...AUTH_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const need = requiredRole(request.body);
      if (principal !== undefined && !roleAllows(principal.role, need)) {
        throw forbidden(`promoting to ${request.body.promote_to ?? 'that stage'} needs role '${need}'; the key has role '${principal.role}'`);
      }
      const job = await jobs.submitTraining(request.body, principal?.keyId ?? 'anonymous');
      return reply.code(202).send({ job_id: job.id, status: 'queued' as const, status_url: `/train/status/${job.id}` });
    },
  );

  app.get(
    '/train/status/:job_id',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Status of a training job with progress percent and stage',
        tags: TAGS,
        params: JobParams,
        response: { 200: JobView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => jobView(await jobs.get(request.params.job_id)),
  );

  app.get(
    '/train/jobs',
    {
      config: { role: 'read' },
      schema: {
        summary: 'List training jobs, newest first',
        tags: TAGS,
        querystring: Type.Object({
          status: Type.Optional(JobStatusValue),
          ...pageProperties(),
        }),
        response: {
          200: Type.Object({ jobs: Type.Array(JobView), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await jobs.list({
        ...(q.status === undefined ? {} : { status: q.status as Job['status'] }),
        limit: q.limit ?? 100,
        ...(q.page_token === undefined ? {} : { pageToken: q.page_token }),
      });
      return { jobs: page.jobs.map(jobView), ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }) };
    },
  );

  app.post(
    '/train/:job_id/cancel',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Cancel a queued or running training job',
        description:
          'A queued job is cancelled at once (`status: cancelled`). A running job is asked to stop (`cancel_requested: true`) and ends `cancelled` within seconds. 409 when the job already finished. A train key cancels the jobs it submitted; other keys\' jobs need admin (403).',
        tags: TAGS,
        params: JobParams,
        response: { 200: JobView, ...errorResponses(400, 404, 409, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      // A train key cancels its own jobs; another key's (an admin's, a colleague's) need admin.
      const principal = request.principal;
      if (principal !== undefined && !roleAllows(principal.role, 'admin')) {
        const job = await jobs.get(request.params.job_id);
        if (job.submittedBy !== principal.keyId) {
          throw forbidden(`job '${job.id}' was submitted by another key; cancelling it needs role 'admin' (the key has role '${principal.role}')`);
        }
      }
      return jobView(await jobs.cancel(request.params.job_id));
    },
  );

  app.get(
    '/train/:job_id/logs',
    {
      config: { role: 'read' },
      schema: {
        summary: "A training job's log lines, oldest first",
        tags: TAGS,
        params: JobParams,
        querystring: Type.Object(pageProperties({ max: 10_000, default: 1000 })),
        response: {
          200: Type.Object({
            job_id: Type.String(),
            lines: Type.Array(Type.Object({ at: Type.String({ format: 'date-time' }), line: Type.String() })),
            next_page_token: Type.Optional(Type.String()),
          }),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const page = await jobs.logs(request.params.job_id, {
        limit: request.query.limit ?? 1000,
        ...(request.query.page_token === undefined ? {} : { pageToken: request.query.page_token }),
      });
      return {
        job_id: request.params.job_id,
        lines: page.lines.map((l) => ({ at: new Date(l.at).toISOString(), line: l.line })),
        ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
      };
    },
  );
}
