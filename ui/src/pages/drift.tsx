/**
 * Drift: per feature the test, statistic, threshold and decision, reference against live
 * distribution where the report has one, and the history of the share of drifted features. Until
 * the server has the drift endpoints the page says so instead of calling them.
 */
import { useState } from 'react';
import { api, fetchWithKey, readBody, unwrap } from '../api/client.ts';
import { driftAvailable } from '../api/drift.ts';
import { readReport, type DriftReport } from '../lib/drift-report.ts';
import { Bars } from '../components/bars.tsx';
import { ErrorView } from '../components/error-view.tsx';
import { LazyLineChart } from '../components/lazy-chart.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { formatNumber, formatPercent, formatTime } from '../lib/format.ts';
import { Link, seg, setQuery, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function DriftPage() {
  const available = useData((signal) => driftAvailable(signal), []);
  return (
    <Page title="Drift">
      <ErrorView error={available.error} />
      {available.loading && <Loading what="drift support" />}
      {available.data === false && (
        <div className="notice" role="status">
          <p>
            <strong>Drift monitoring is not available on this server yet.</strong> It has no <code>/drift/…</code> endpoints, so there is no report to show.
          </p>
          <p>
            When the drift feature ships, this page shows for each model the test, statistic, threshold and decision per feature, reference against live
            distributions, and the share of drifted features over time. Predictions are logged meanwhile (<code>PREDICTION_LOG_SAMPLE_RATE</code>), so reports
            will cover them.
          </p>
        </div>
      )}
      {available.data === true && <DriftReports />}
    </Page>
  );
}

function DriftReports() {
  const models = useData((signal) => unwrap(api.GET('/models', { params: { query: { limit: 1000 } }, signal })), []);
  const query = useLocation().query;
  const chosen = query.get('model') ?? models.data?.models[0]?.name ?? '';
  const [windowRows, setWindowRows] = useState(query.get('window') ?? '1000');
  const report = useData(
    async (signal) => {
      if (chosen === '') return undefined;
      const response = await fetchWithKey(`/drift/${seg(chosen)}?window=${encodeURIComponent(windowRows)}`, { signal });
      return readReport(await readBody(response));
    },
    [chosen, windowRows],
  );
  const history = useData(
    async (signal) => {
      if (chosen === '') return [];
      const body = await readBody(await fetchWithKey(`/drift/${seg(chosen)}/history`, { signal }));
      const list = Array.isArray(body) ? body : ((body as { reports?: unknown[]; history?: unknown[] }).reports ?? (body as { history?: unknown[] }).history ?? []);
      return list.map(readReport);
    },
    [chosen],
  );

  if (models.error !== undefined) return <ErrorView error={models.error} />;
  if (models.data === undefined) return <Loading what="models" />;
  if (models.data.models.length === 0) return <p>No registered model yet.</p>;
  return (
    <>
      <div className="row">
        <span className="inline-field">
          <label htmlFor="drift-model">Model</label>
          <select id="drift-model" value={chosen} onChange={(e) => setQuery({ model: e.target.value })}>
            {models.data.models.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
              </option>
            ))}
          </select>
        </span>
        <span className="inline-field">
          <label htmlFor="drift-window">Window (latest logged rows)</label>
          <input id="drift-window" type="number" min={1} value={windowRows} onChange={(e) => setWindowRows(e.target.value)} />
        </span>
      </div>
      <ErrorView error={report.error} title="Drift report" />
      {report.loading && <Loading what="the drift report" />}
      {report.data !== undefined && <Report model={chosen} report={report.data} />}
      <Section title="History">
        <ErrorView error={history.error} />
        {history.data !== undefined &&
          (history.data.length === 0 ? (
            <p>No past reports.</p>
          ) : (
            <LazyLineChart
              title="Share of drifted features"
              xLabel="time"
              xIsTime
              series={[
                {
                  label: 'share drifted',
                  points: history.data.filter((r) => r.at !== undefined).map((r) => ({ x: Date.parse(r.at!) / 1000, y: r.share_drifted ?? null })),
                },
              ]}
              formatY={(v) => formatPercent(v, 0)}
            />
          ))}
      </Section>
    </>
  );
}

function Report({ model, report }: { model: string; report: DriftReport }) {
  return (
    <>
      <p className="summary" role="status">
        <Link to={`/models/${seg(model)}`}>{model}</Link>: {report.dataset_drift === undefined ? 'dataset drift —' : report.dataset_drift ? <strong className="drifted">dataset drift detected</strong> : 'no dataset drift'} ·
        share of drifted features {formatPercent(report.share_drifted)}
        {report.at === undefined ? '' : ` · ${formatTime(report.at)}`}
      </p>
      {report.figures.length > 0 && (
        <dl className="facts">
          {report.figures.map(([k, v]) => (
            <div key={k} className="fact">
              <dt>{k.replace(/_/g, ' ')}</dt>
              <dd>{typeof v === 'number' ? formatNumber(v) : v}</dd>
            </div>
          ))}
        </dl>
      )}
      <Section title="Features">
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Drift test per feature</caption>
            <thead>
              <tr>
                <th scope="col">Feature</th>
                <th scope="col">Test</th>
                <th scope="col" className="num">
                  Statistic
                </th>
                <th scope="col" className="num">
                  p-value
                </th>
                <th scope="col" className="num">
                  Threshold
                </th>
                <th scope="col">Decision</th>
                <th scope="col" className="num">
                  Null rate
                </th>
                <th scope="col" className="num">
                  Unseen rate
                </th>
              </tr>
            </thead>
            <tbody>
              {report.features.map((f) => (
                <tr key={f.feature} className={f.drifted === true ? 'differs' : undefined}>
                  <th scope="row">{f.feature}</th>
                  <td>{f.method ?? '—'}</td>
                  <td className="num">{formatNumber(f.statistic)}</td>
                  <td className="num">{formatNumber(f.p_value)}</td>
                  <td className="num">{formatNumber(f.threshold)}</td>
                  <td>{f.drifted === undefined ? '—' : f.drifted ? <strong className="drifted">drifted</strong> : 'no drift'}</td>
                  <td className="num">{formatPercent(f.null_rate)}</td>
                  <td className="num">{formatPercent(f.unseen_rate)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="histograms">
          {report.features
            .filter((f) => f.distribution !== undefined)
            .map((f) => (
              <Bars
                key={f.feature}
                title={f.feature}
                compareLabels={['reference', 'live']}
                bins={f.distribution!.labels.map((label, i) => ({ label, value: f.distribution!.reference[i] ?? 0, compare: f.distribution!.current[i] ?? 0 }))}
              />
            ))}
        </div>
      </Section>
    </>
  );
}
