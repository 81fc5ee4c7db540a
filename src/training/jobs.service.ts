/**
 * The rules of training jobs as the API sees them: submit (validate up front, then queue),
 * status, listing, cancellation and logs, plus the `training_*` metrics and the `/info` section.
 * Reads come from the jobs table, so they answer the same whichever backend runs the jobs and
 * whichever process asks.
 */
import { Gauge } from 'prom-client';
import type { DatasetService } from '../datasets/dataset.service.ts';
import type { Metrics } from '../platform/metrics.ts';
import { conflict, notFound } from '../platform/errors.ts';
import { decodePageToken, encodePageToken } from '../platform/schemas.ts';
import type { Store } from '../store/database.ts';
import type { JobResult, JobStatus, TrainRequest } from './job.types.ts';
import { observeTraining } from './job.metrics.ts';
import { countByStatus, getJob, getLogs, listJobs, type JobRow } from './jobs.repository.ts';
import type { JobQueue } from './queue.ts';
import { validateTrainRequest } from './train-request.ts';

/** A job as services and routes see it. */
export interface Job {
  readonly id: string;
  readonly kind: string;
  readonly status: JobStatus;
  readonly progress: { readonly percent: number; readonly stage: string | null; readonly message: string | null };
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly cancelRequested: boolean;
  readonly error: string | null;
  readonly result: JobResult | null;
  readonly runId: string | null;
  /** The experiment the job logs to (from its result, else its request). */
  readonly experimentName: string | null;
  /** Key id of whoever submitted the job (`null` for jobs without one). */
  readonly submittedBy: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toJob(row: JobRow): Job {
  const result = parseJson(row.result) as JobResult | null;
  const payload = parseJson(row.payload) as { request?: { experiment_name?: unknown }; actor?: unknown } | null;
  const requested = payload?.request?.experiment_name;
  return {
    id: row.id,
    kind: row.kind,
    status: row.status as JobStatus,
    progress: { percent: row.progress_percent, stage: row.stage, message: row.message },
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    cancelRequested: row.cancel_requested !== 0,
    error: row.error,
    result,
    runId: row.run_id,
    experimentName: result?.experimentName ?? (typeof requested === 'string' ? requested : null),
    submittedBy: typeof payload?.actor === 'string' ? payload.actor : null,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/** How long a metrics scrape waits for fresh job counts before it shows the last ones. */
const COUNTS_SCRAPE_WAIT_MS = 1000;

/** Waits for `work` at most `ms`; its failure or lateness is ignored (it goes on in the background). */
async function boundedQuietly(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What {@link JobsService} works with. */
export interface JobsServiceDeps {
  readonly store: Store;
  readonly queue: JobQueue;
  /** The process's metrics registry (`training_jobs`, `training_job_duration_seconds`). */
  readonly metrics: Metrics;
  /** Dataset versions and schemas, for the checks of a submitted job. */
  readonly datasets: DatasetService;
}

export class JobsService {
  private counts: Record<string, number> = {};
  private countsAt = 0;
  private refreshing: Promise<void> | undefined;
  readonly queue: JobQueue;

  constructor(private readonly deps: JobsServiceDeps) {
    this.queue = deps.queue;
    observeTraining(deps.metrics.registry, deps.queue);
    // A scrape never fails or stalls on the database: while it is unreachable (or slow) the
    // gauge shows the last counts read, and Prometheus keeps every other series.
    const refresh = (): Promise<void> => boundedQuietly(this.refreshCounts(0), COUNTS_SCRAPE_WAIT_MS);
    const current = (status: string): number => this.counts[status] ?? 0;
    // Derived from the table rather than counted in-process: jobs finish in other processes
    // (`modelplane worker`) and the history outlives restarts. A gauge (counts go down as jobs
    // leave `queued`), so no `_total` suffix, which Prometheus reserves for counters.
    new Gauge({
      name: 'training_jobs',
      help: 'Training jobs recorded, by status',
      labelNames: ['status'],
      registers: [deps.metrics.registry],
      aggregator: 'max',
      async collect() {
        await refresh();
        for (const s of JOB_STATUSES) this.set({ status: s }, current(s));
      },
    });
  }

  /**
   * Checks a training request up front (400/404 naming what is wrong; see `validateTrainRequest`)
   * and queues the resolved job.
   */
  async submitTraining(request: TrainRequest, actor: string): Promise<Job> {
    const job = await validateTrainRequest(request, this.deps.datasets, actor);
    const id = await this.queue.enqueue(job);
    this.countsAt = 0;
    return this.get(id);
  }

  async get(id: string): Promise<Job> {
    const row = await getJob(this.deps.store.db, id);
    if (row === undefined) throw notFound(`training job '${id}' not found`);
    return toJob(row);
  }

  async list(q: { status?: JobStatus; limit: number; pageToken?: string }): Promise<{ jobs: Job[]; nextPageToken?: string }> {
    const offset = decodePageToken(q.pageToken);
    const rows = await listJobs(this.deps.store.db, { ...(q.status === undefined ? {} : { status: q.status }), limit: q.limit + 1, offset });
    const more = rows.length > q.limit;
    return { jobs: rows.slice(0, q.limit).map(toJob), ...(more ? { nextPageToken: encodePageToken(offset + q.limit) } : {}) };
  }

  /** Cancels a queued job at once or asks a running one to stop; 409 when it already finished. */
  async cancel(id: string): Promise<Job> {
    const outcome = await this.queue.cancel(id);
    if (outcome === 'not_found') throw notFound(`training job '${id}' not found`);
    const job = await this.get(id);
    if (outcome === 'already_finished') throw conflict(`training job '${id}' already finished (${job.status})`);
    this.countsAt = 0;
    return job;
  }

  /** Log lines in order; the page token is the last sequence number seen. */
  async logs(id: string, q: { limit: number; pageToken?: string }): Promise<{ lines: Array<{ at: number; line: string }>; nextPageToken?: string }> {
    await this.get(id);
    const after = decodePageToken(q.pageToken);
    const rows = await getLogs(this.deps.store.db, id, { afterSeq: after, limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      lines: page.map((r) => ({ at: r.at, line: r.line })),
      ...(rows.length > q.limit && last !== undefined ? { nextPageToken: encodePageToken(last.seq) } : {}),
    };
  }

  /** The `/info` section: backend and job counts (refreshed in the background, at most every 2 s). */
  section(): Record<string, unknown> {
    void this.refreshCounts(2000).catch(() => undefined);
    return { queue: this.queue.describe(), jobs: { ...this.counts } };
  }

  async refreshCounts(maxAgeMs: number): Promise<void> {
    if (Date.now() - this.countsAt <= maxAgeMs) return;
    this.refreshing ??= countByStatus(this.deps.store.db)
      .then((c) => {
        this.counts = c;
        this.countsAt = Date.now();
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    await this.refreshing;
  }
}
