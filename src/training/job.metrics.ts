/**
 * The training metrics of a process that runs jobs. `training_job_duration_seconds` is observed
 * where a job ends, so every process that runs jobs registers it: an API with training threads
 * (`TRAINING_WORKERS`) on its registry, a `modelplane worker` on the registry its metrics listener
 * serves. Prometheus sums the processes. (`training_jobs`, the counts by status, is read from the
 * jobs table and is the API's alone; see `JobsService`.)
 */
import { Histogram, type Registry } from 'prom-client';
import type { JobQueue } from './queue.ts';

/**
 * Registers `training_job_duration_seconds` (wall time of the jobs that end in this process, first
 * start to end, by final status) on `registry` and observes every job `queue` finishes. Returns
 * the unsubscribe from the queue.
 */
export function observeJobDurations(registry: Registry, queue: JobQueue): () => void {
  const duration = new Histogram({
    name: 'training_job_duration_seconds',
    help: 'Wall time of finished training jobs (first start to end), by final status',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  return queue.onFinished((status, seconds) => duration.labels(status).observe(seconds));
}
