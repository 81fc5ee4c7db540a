/**
 * Finding and settling orphaned jobs: rows left `running` by a worker that died (its process
 * exited, its host vanished, or it stopped heartbeating). An orphan is re-queued while attempts
 * remain, else failed with a reason that names the stage it died in. Runs at queue start (jobs
 * left by a previous process) and periodically.
 */
import { hostname } from 'node:os';
import type { Store } from '../store/database.ts';
import { appendLogs, failAttemptRun, settleRunning, type JobRow } from './jobs.repository.ts';
import { nextStateAfterFailure, parseWorkerId } from './worker.runner.ts';

/** Worker ids of runners alive in this process (several queues may share a process in tests). */
const liveInstances = new Set<string>();

export function markWorkerAlive(workerId: string): void {
  liveInstances.add(workerId);
}

export function markWorkerGone(workerId: string): void {
  liveInstances.delete(workerId);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why a running row is orphaned, or undefined while its worker may still be alive. A worker on
 * this host is judged by its process (a restart is recognised at once); others by heartbeat age.
 * `checkProcess` is off where another system re-delivers jobs of dead processes (BullMQ).
 */
export function orphanReason(row: JobRow, now: number, heartbeatTimeoutMs: number, checkProcess: boolean): string | undefined {
  const stage = `stage '${row.stage ?? 'unknown'}'`;
  const worker = row.worker_id === null ? undefined : parseWorkerId(row.worker_id);
  if (row.worker_id !== null && liveInstances.has(row.worker_id)) return undefined;
  if (checkProcess && worker !== undefined && worker.host === hostname()) {
    if (worker.pid === process.pid || !processExists(worker.pid)) {
      return `worker died (process ${worker.pid} is gone) during ${stage}`;
    }
  }
  const age = now - (row.heartbeat_at ?? row.started_at ?? 0);
  if (age > heartbeatTimeoutMs) {
    return `worker died (no heartbeat for ${Math.round(age / 1000)} s) during ${stage}`;
  }
  return undefined;
}

/**
 * Re-queues or fails one orphaned row (compare-and-set on its dead owner, so a worker that comes
 * back cannot race with it). Returns the new status, or undefined when the row had moved on.
 */
export async function settleOrphan(store: Store, row: JobRow, reason: string): Promise<'queued' | 'failed' | undefined> {
  if (row.worker_id === null) return undefined;
  const next = nextStateAfterFailure(row, reason, false);
  const ok = await settleRunning(store.db, row.id, row.worker_id, Date.now(), next.settlement);
  if (!ok) return undefined;
  // The dead attempt's tracking run ends with it (a no-op for a run that already ended).
  if (row.run_id !== null && (await failAttemptRun(store.db, row.run_id, Date.now(), reason))) {
    await appendLogs(store.db, row.id, [{ at: Date.now(), line: `tracking run ${row.run_id} of the dead attempt marked FAILED` }]);
  }
  await appendLogs(store.db, row.id, [{ at: Date.now(), line: next.logLine }]);
  return next.end === 'retry' ? 'queued' : 'failed';
}
