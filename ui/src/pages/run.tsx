/**
 * One run: overview, params, latest metrics with a chart over steps for each metric logged more
 * than once, tags, artifacts (downloaded with the key), the dataset it trained on and the model
 * versions it produced.
 */
import { useState } from 'react';
import { api, fetchWithKey, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { LazyLineChart } from '../components/lazy-chart.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { formatBytes, formatDuration, formatNumber, formatTime } from '../lib/format.ts';
import { metricSeries } from '../lib/metric-history.ts';
import { Link, seg, withQuery } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function RunPage({ params }: { params: { name: string; run: string } }) {
  const { name, run: runId } = params;
  const run = useData((signal) => unwrap(api.GET('/experiments/{name}/runs/{run_id}', { params: { path: { name, run_id: runId } }, signal })), [name, runId]);
  const keys = run.data?.latest_metrics.map((m) => m.key) ?? [];
  const histories = useData(
    async (signal) => (run.data === undefined ? [] : Promise.all(keys.map((k) => metricSeries(name, runId, k, k, signal)))),
    [run.data],
  );

  const r = run.data;
  return (
    <Page title={r === undefined ? 'Run' : `Run ${r.run_name || r.run_id}`}>
      <p className="breadcrumbs">
        <Link to="/experiments">Experiments</Link> / <Link to={`/experiments/${seg(name)}`}>{name}</Link> / {r?.run_name ?? runId}
      </p>
      <ErrorView error={run.error} />
      {run.loading && <Loading what="the run" />}
      {r !== undefined && (
        <>
          <dl className="facts">
            <dt>Run id</dt>
            <dd>
              <code>{r.run_id}</code>
            </dd>
            <dt>Status</dt>
            <dd>
              <span className={`status status-${r.status.toLowerCase()}`}>{r.status}</span>
            </dd>
            <dt>Started</dt>
            <dd>{formatTime(r.start_time)}</dd>
            <dt>Duration</dt>
            <dd>{formatDuration(r.start_time, r.end_time)}</dd>
            <dt>User</dt>
            <dd>{r.user_id || '—'}</dd>
            <dt>Artifact root</dt>
            <dd>
              <code>{r.artifact_uri}</code>
            </dd>
          </dl>

          <div className="columns">
            <Section title="Parameters">
              <KeyValues entries={Object.entries(r.params)} empty="No parameters logged." label="Parameters" />
            </Section>
            <Section title="Metrics">
              {r.latest_metrics.length === 0 ? (
                <p>No metrics logged.</p>
              ) : (
                <table>
                  <caption className="visually-hidden">Latest metric values</caption>
                  <thead>
                    <tr>
                      <th scope="col">Metric</th>
                      <th scope="col" className="num">
                        Latest
                      </th>
                      <th scope="col" className="num">
                        Step
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.latest_metrics.map((m) => (
                      <tr key={m.key}>
                        <th scope="row">{m.key}</th>
                        <td className="num">{formatNumber(m.value)}</td>
                        <td className="num">{m.step}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Section>
          </div>

          <Section title="Metric charts">
            <ErrorView error={histories.error} title="Metric history" />
            {histories.loading && <Loading what="metric history" />}
            {histories.data !== undefined &&
              (histories.data.some((s) => s.points.length > 1) ? (
                <div className="charts">
                  {histories.data
                    .filter((s) => s.points.length > 1)
                    .map((s) => (
                      <LazyLineChart key={s.label} title={s.label} series={[s]} xLabel="step" />
                    ))}
                </div>
              ) : (
                <p>Every metric has a single value (no history over steps to chart).</p>
              ))}
          </Section>

          <div className="columns">
            <Section title="Dataset">
              {r.dataset === null ? (
                <p>No dataset recorded for this run.</p>
              ) : (
                <p>
                  <Link to={withQuery(`/datasets/${seg(r.dataset.name)}`, { version: r.dataset.version })}>
                    {r.dataset.name} version {r.dataset.version}
                  </Link>
                  <br />
                  <span className="hint">
                    sha-256 <code>{r.dataset.digest}</code>
                  </span>
                </p>
              )}
            </Section>
            <Section title="Model versions produced">
              {r.model_versions.length === 0 ? (
                <p>This run registered no model version.</p>
              ) : (
                <ul>
                  {r.model_versions.map((m) => (
                    <li key={`${m.name}@${m.version}`}>
                      <Link to={withQuery(`/models/${seg(m.name)}`, { version: m.version })}>
                        {m.name} version {m.version}
                      </Link>
                    </li>
                  ))}
                </ul>
              )}
            </Section>
          </div>

          <Section title="Tags">
            <KeyValues entries={Object.entries(r.tags)} empty="No tags." label="Tags" />
          </Section>

          <Section title="Artifacts">
            <Artifacts experiment={name} runId={r.run_id} files={r.artifacts} truncated={r.artifacts_truncated} />
          </Section>
        </>
      )}
    </Page>
  );
}

function KeyValues({ entries, empty, label }: { readonly entries: readonly [string, string][]; readonly empty: string; readonly label: string }) {
  if (entries.length === 0) return <p>{empty}</p>;
  return (
    <table>
      <caption className="visually-hidden">{label}</caption>
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td className="wrap">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Artifact downloads go through fetch (the key is a header, which a plain link cannot send). */
function Artifacts({ experiment, runId, files, truncated }: { experiment: string; runId: string; files: readonly { path: string; size: number }[]; truncated: boolean }) {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState<string | undefined>(undefined);
  if (files.length === 0) return <p>No artifacts.</p>;
  const download = async (path: string) => {
    setError(undefined);
    setBusy(path);
    try {
      const url = `/experiments/${seg(experiment)}/runs/${seg(runId)}/artifacts/${path.split('/').map(seg).join('/')}`;
      const blob = await (await fetchWithKey(url)).blob();
      const href = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = href;
      a.download = path.split('/').pop() ?? 'artifact';
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(href), 10_000);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
    }
  };
  return (
    <>
      <ErrorView error={error} title="Download" />
      <table>
        <caption className="visually-hidden">Artifacts</caption>
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col">
              <span className="visually-hidden">Download</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.path}>
              <th scope="row">
                <code>{f.path}</code>
              </th>
              <td className="num">{formatBytes(f.size)}</td>
              <td>
                <button type="button" onClick={() => void download(f.path)} disabled={busy === f.path} aria-label={`Download ${f.path}`}>
                  {busy === f.path ? 'Downloading…' : 'Download'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {truncated && <p className="hint">Only the first 1000 files are listed.</p>}
    </>
  );
}
