/**
 * Drift: a model's report over its latest logged predictions (per feature the test, statistic,
 * p-value, threshold and decision, null and unseen rates, reference against live distribution),
 * dataset drift, "not enough data" when the window is too small, and the reports the periodic
 * check stored, over time.
 */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client.ts';
import { driftHistory, driftReport } from '../api/drift.ts';
import {
  decisionOf,
  distributionBins,
  driftedFeatures,
  historyPoints,
  methodName,
  readWindow,
  referenceOf,
  summaryOf,
  windowOf,
  type DriftReport,
} from '../lib/drift-report.ts';
import { Bars } from '../components/bars.tsx';
import { ErrorView } from '../components/error-view.tsx';
import { LazyLineChart } from '../components/lazy-chart.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { formatNumber, formatPercent, formatTime } from '../lib/format.ts';
import { Link, seg, setQuery, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

/** Past reports listed under the chart. */
const HISTORY_ROWS = 20;

export default function DriftPage() {
  const models = useData((signal) => unwrap(api.GET('/models', { params: { query: { limit: 1000 } }, signal })), []);
  return (
    <Page title="Drift">
      <ErrorView error={models.error} />
      {models.loading && <Loading what="models" />}
      {models.data !== undefined && (models.data.models.length === 0 ? <p>No registered model yet.</p> : <DriftReports models={models.data.models.map((m) => m.name)} />)}
    </Page>
  );
}

function DriftReports({ models }: { readonly models: readonly string[] }) {
  const query = useLocation().query;
  const chosen = query.get('model') ?? models[0]!;
  const applied = readWindow(query.get('window') ?? '').window;
  const [windowText, setWindowText] = useState(applied === undefined ? '' : String(applied));
  const invalid = readWindow(windowText).invalid;
  const report = useData((signal) => driftReport(chosen, applied, signal), [chosen, applied]);
  const history = useData((signal) => driftHistory(chosen, signal), [chosen]);

  const apply = (e: FormEvent) => {
    e.preventDefault();
    if (invalid !== undefined) return;
    const w = readWindow(windowText).window;
    setQuery({ window: w === undefined ? undefined : String(w) });
  };

  return (
    <>
      <form className="row" onSubmit={apply}>
        <span className="inline-field">
          <label htmlFor="drift-model">Model</label>
          <select id="drift-model" value={chosen} onChange={(e) => setQuery({ model: e.target.value })}>
            {models.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </span>
        <span className="inline-field">
          <label htmlFor="drift-window">Window (latest logged rows)</label>
          <input
            id="drift-window"
            inputMode="numeric"
            placeholder="server default"
            value={windowText}
            onChange={(e) => setWindowText(e.target.value)}
            aria-invalid={invalid !== undefined}
            aria-describedby={invalid === undefined ? undefined : 'drift-window-invalid'}
          />
        </span>
        <button type="submit" disabled={invalid !== undefined}>
          Apply
        </button>
      </form>
      {invalid !== undefined && (
        <p id="drift-window-invalid" className="invalid">
          {invalid}
        </p>
      )}
      <ErrorView error={report.error} title="Drift report" />
      {report.loading && <Loading what="the drift report" />}
      {report.data !== undefined && <Report report={report.data} />}
      <Section title="History">
        <p className="hint">Reports stored by the periodic drift check (DRIFT_CHECK_INTERVAL), the chart runs oldest to newest, the table newest first.</p>
        <ErrorView error={history.error} />
        {history.data !== undefined && <History reports={history.data.reports} />}
      </Section>
    </>
  );
}

function Report({ report }: { readonly report: DriftReport }) {
  const tested = report.status === 'ok';
  return (
    <>
      <p className="summary" role="status" data-testid="drift-summary">
        <Link to={`/models/${seg(report.model)}`}>{report.model}</Link> version {report.version}:{' '}
        {report.dataset_drift === true ? <strong className="drifted">{summaryOf(report)}</strong> : summaryOf(report)}
      </p>
      {!tested && (
        <div className="notice" data-testid="drift-not-enough">
          <p>
            <strong>Not enough data for a report.</strong> The window holds {report.current_rows} logged row{report.current_rows === 1 ? '' : 's'} of this version; a
            report needs at least {report.min_window} (<code>DRIFT_MIN_WINDOW</code>). Send more predictions to the model, or widen the window.
          </p>
        </div>
      )}
      <dl className="facts">
        <Fact name="computed">{formatTime(report.computed_at)}</Fact>
        <Fact name="live rows">{`${report.current_rows} (${windowOf(report)})`}</Fact>
        <Fact name="reference">{referenceOf(report)}</Fact>
        <Fact name="features">{String(report.n_features)}</Fact>
        <Fact name="fewest rows for a report">{String(report.min_window)}</Fact>
      </dl>
      {tested && <Features report={report} />}
    </>
  );
}

function Fact({ name, children }: { readonly name: string; readonly children: string }) {
  return (
    <div className="fact">
      <dt>{name}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Features({ report }: { readonly report: DriftReport }) {
  return (
    <Section title="Features">
      <div className="table-wrap">
        <table className="drift-features">
          <caption className="visually-hidden">Drift test per feature</caption>
          <thead>
            <tr>
              <th scope="col">Feature</th>
              <th scope="col">Type</th>
              <th scope="col">Test</th>
              <th scope="col" className="num">
                Statistic
              </th>
              <th scope="col" className="num">
                p-value
              </th>
              <th scope="col">Drift when</th>
              <th scope="col">Decision</th>
              <th scope="col" className="num">
                Live rows
              </th>
              <th scope="col" className="num">
                Null rate (live / reference)
              </th>
              <th scope="col" className="num">
                Unseen rate
              </th>
            </tr>
          </thead>
          <tbody>
            {report.features.map((f) => {
              const d = decisionOf(f);
              return (
                <tr key={f.feature} className={d.drifted ? 'differs' : undefined}>
                  <th scope="row">{f.feature}</th>
                  <td>{f.type}</td>
                  <td>{methodName(f.method)}</td>
                  <td className="num">{formatNumber(f.statistic)}</td>
                  <td className="num">{formatNumber(f.p_value)}</td>
                  <td>{d.rule}</td>
                  <td data-testid="drift-decision">{d.drifted ? <strong className="drifted">{d.label}</strong> : d.label}</td>
                  <td className="num">{f.current_count}</td>
                  <td className="num">
                    {formatPercent(f.null_rate)} / {formatPercent(f.reference_null_rate)}
                  </td>
                  <td className="num">{formatPercent(f.unseen_rate)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <h3>Reference against live distribution</h3>
      <p className="hint">Share of rows per bin (numeric features: the reference's quantile bins, with a bin below and above its range) or per category (the 20 most frequent).</p>
      <div className="histograms">
        {report.features.map((f) => (
          <Bars key={f.feature} title={`${f.feature}: ${decisionOf(f).label}`} compareLabels={['reference', 'live']} bins={distributionBins(f)} />
        ))}
      </div>
    </Section>
  );
}

function History({ reports }: { readonly reports: readonly DriftReport[] }) {
  if (reports.length === 0) return <p>No stored report yet: the periodic check stores one for each model with a reference and new logged predictions.</p>;
  return (
    <>
      <LazyLineChart title="Share of drifted features" xLabel="time" xIsTime series={[{ label: 'share of drifted features', points: historyPoints(reports) }]} formatY={(v) => formatPercent(v, 0)} />
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Stored drift reports, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Computed</th>
              <th scope="col">Version</th>
              <th scope="col" className="num">
                Live rows
              </th>
              <th scope="col" className="num">
                Share drifted
              </th>
              <th scope="col">Dataset drift</th>
              <th scope="col">Drifted features</th>
            </tr>
          </thead>
          <tbody>
            {reports.slice(0, HISTORY_ROWS).map((r) => (
              <tr key={`${r.computed_at}-${r.version}`}>
                <th scope="row">{formatTime(r.computed_at)}</th>
                <td>{r.version}</td>
                <td className="num">{r.current_rows}</td>
                <td className="num">{formatPercent(r.share_drifted)}</td>
                <td>{r.dataset_drift === null ? '—' : r.dataset_drift ? <strong className="drifted">yes</strong> : 'no'}</td>
                <td>{driftedFeatures(r).join(', ') || '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
