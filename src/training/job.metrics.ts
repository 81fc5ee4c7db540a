/**
 * The training metrics of a process that runs jobs. `training_job_duration_seconds` is observed
 * where a job ends, so every process that runs jobs registers it: an API with training workers
 * (`TRAINING_WORKERS`) on its registry, a `modelplane worker` on the registry its metrics listener
 * serves. Prometheus sums the processes. `training_worker_resident_memory_bytes` is the memory of
 * the process's training worker processes, which its own `process_resident_memory_bytes` does not
 * include. (`training_jobs`, the counts by status, is read from the jobs table and is the API's
 * alone; see `JobsService`.)
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { JobQueue } from './queue.ts';

/**
 * Registers `training_job_duration_seconds` (wall time of the jobs that end in this process, first
 * start to end, by final status) on `registry` and observes every job `queue` finishes, and
 * `training_worker_resident_memory_bytes`, read from `queue` at each scrape. Returns the
 * unsubscribe from the queue.
 */
export function observeTraining(registry: Registry, queue: JobQueue): () => void {
  new Gauge({
    name: 'training_worker_resident_memory_bytes',
    help: "Resident memory of this process's training worker processes (the jobs' memory; 0 when none is alive)",
    registers: [registry],
    collect() {
      this.set(queue.workerMemoryBytes());
    },
  });
  const duration = new Histogram({
    name: 'training_job_duration_seconds',
    help: 'Wall time of finished training jobs (first start to end), by final status',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  return queue.onFinished((status, seconds) => duration.labels(status).observe(seconds));
}
