/** One training job: live progress and log lines while it runs, its result, and cancel. */
import { useEffect, useRef, useState } from 'react';
import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { GuardedButton } from '../components/guarded.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { formatDuration, formatNumber, formatTime } from '../lib/format.ts';
import { Link, seg, withQuery } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

const ACTIVE = new Set(['queued', 'running']);

export default function JobPage({ params }: { params: { job: string } }) {
  const id = params.job;
  const job = useData((signal) => unwrap(api.GET('/train/status/{job_id}', { params: { path: { job_id: id } }, signal })), [id], {
    pollMs: 1000,
    shouldPoll: (j) => j !== undefined && ACTIVE.has(j.status),
  });
  const active = job.data === undefined || ACTIVE.has(job.data.status);
  const logs = useData((signal) => unwrap(api.GET('/train/{job_id}/logs', { params: { path: { job_id: id }, query: { limit: 10000 } }, signal })), [id, active], {
    pollMs: 1000,
    shouldPoll: () => active,
  });
  const [cancelError, setCancelError] = useState<unknown>(undefined);
  const logBox = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = logBox.current;
    if (el !== null) el.scrollTop = el.scrollHeight;
  }, [logs.data?.lines.length]);

  const cancel = async () => {
    setCancelError(undefined);
    try {
      await unwrap(api.POST('/train/{job_id}/cancel', { params: { path: { job_id: id } } }));
      job.reload();
    } catch (err) {
      setCancelError(err);
    }
  };

  const j = job.data;
  return (
    <Page title={`Training job ${id.slice(0, 8)}`}>
      <p className="breadcrumbs">
        <Link to="/training">Training</Link> / {id}
      </p>
      <ErrorView error={job.error} />
      {job.loading && j === undefined && <Loading what="the job" />}
      {j !== undefined && (
        <>
          <div className="job-status">
            <p>
              Status: <span className={`status status-${j.status}`} data-testid="job-status">{j.status}</span>
              {j.cancel_requested && j.status === 'running' && ' (cancel requested)'}
            </p>
            <label htmlFor="job-progress">Progress {Math.round(j.progress.percent)} %</label>
            <progress id="job-progress" max={100} value={j.progress.percent} />
            <p className="hint" aria-live="polite">
              {j.progress.stage ?? '—'}
              {j.progress.message === null ? '' : `: ${j.progress.message}`}
            </p>
            <GuardedButton need="train" onClick={() => void cancel()} disabled={!ACTIVE.has(j.status)} className="danger">
              Cancel job
            </GuardedButton>
            {!ACTIVE.has(j.status) && <span className="hint"> The job has finished; there is nothing to cancel.</span>}
            <ErrorView error={cancelError} title="Cancel" />
          </div>
          <dl className="facts">
            <dt>Created</dt>
            <dd>{formatTime(j.created_at)}</dd>
            <dt>Ran</dt>
            <dd>{formatDuration(j.started_at, j.finished_at)}</dd>
            <dt>Attempts</dt>
            <dd>
              {j.attempts} of {j.max_attempts}
            </dd>
            <dt>Run</dt>
            <dd>{j.run_id === null || j.experiment_name === null ? '—' : <Link to={`/experiments/${seg(j.experiment_name)}/runs/${seg(j.run_id)}`}>{`${j.experiment_name} / ${j.run_id.slice(0, 8)}`}</Link>}</dd>
            <dt>Model</dt>
            <dd>{j.model === null ? '—' : <Link to={withQuery(`/models/${seg(j.model.name)}`, { version: j.model.version })}>{`${j.model.name} version ${j.model.version} (${j.model.stage})`}</Link>}</dd>
            <dt>Metrics</dt>
            <dd>
              {Object.entries(j.metrics)
                .map(([k, v]) => `${k} ${formatNumber(v)}`)
                .join(', ') || '—'}
            </dd>
          </dl>
          {j.error !== null && (
            <div className="error" role="alert">
              <p className="error-head">The job failed</p>
              <p className="error-details">{j.error}</p>
            </div>
          )}
        </>
      )}
      <Section title="Log">
        <ErrorView error={logs.error} />
        <pre className="log" ref={logBox} tabIndex={0} aria-label="Job log">
          {logs.data === undefined ? '' : logs.data.lines.map((l) => `${l.at.slice(11, 23)}  ${l.line}`).join('\n') || '(no lines yet)'}
        </pre>
      </Section>
    </Page>
  );
}
