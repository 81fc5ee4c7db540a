/**
 * Runs side by side: params and latest metrics in one table (rows that differ are marked), and
 * every metric's history overlaid, one curve per run.
 */
import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { LazyLineChart } from '../components/lazy-chart.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { formatNumber } from '../lib/format.ts';
import { metricSeries } from '../lib/metric-history.ts';
import { Link, seg, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function ComparePage({ params }: { params: { name: string } }) {
  const { name } = params;
  const ids = (useLocation().query.get('runs') ?? '').split(',').filter((s) => s !== '');
  const runs = useData(
    (signal) => Promise.all(ids.map((id) => unwrap(api.GET('/experiments/{name}/runs/{run_id}', { params: { path: { name, run_id: id } }, signal })))),
    [name, ids.join(',')],
  );
  const labels = new Map((runs.data ?? []).map((r) => [r.run_id, r.run_name || r.run_id]));
  // A run name may repeat: add the id where it does.
  const label = (id: string) => {
    const l = labels.get(id) ?? id;
    return [...labels.values()].filter((x) => x === l).length > 1 ? `${l} (${id.slice(0, 8)})` : l;
  };
  const metricKeys = [...new Set((runs.data ?? []).flatMap((r) => r.latest_metrics.map((m) => m.key)))].sort();
  const paramKeys = [...new Set((runs.data ?? []).flatMap((r) => Object.keys(r.params)))].sort();
  const curves = useData(
    async (signal) => {
      if (runs.data === undefined) return [];
      return Promise.all(
        metricKeys.map(async (key) => ({
          key,
          series: await Promise.all(runs.data!.filter((r) => r.latest_metrics.some((m) => m.key === key)).map((r) => metricSeries(name, r.run_id, key, label(r.run_id), signal))),
        })),
      );
    },
    [runs.data],
  );

  return (
    <Page title={`Compare ${ids.length} runs`}>
      <p className="breadcrumbs">
        <Link to="/experiments">Experiments</Link> / <Link to={`/experiments/${seg(name)}`}>{name}</Link> / compare
      </p>
      {ids.length < 2 && <p>Select at least two runs on the experiment page to compare them.</p>}
      <ErrorView error={runs.error} />
      {runs.loading && <Loading what="runs" />}
      {runs.data !== undefined && (
        <>
          <Section title="Parameters and metrics">
            <div className="table-wrap">
              <table className="compare">
                <caption className="visually-hidden">Parameters and latest metrics of each run; rows whose values differ are marked</caption>
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    {runs.data.map((r) => (
                      <th scope="col" key={r.run_id}>
                        <Link to={`/experiments/${seg(name)}/runs/${seg(r.run_id)}`}>{label(r.run_id)}</Link>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  <tr className="group">
                    <th scope="rowgroup" colSpan={runs.data.length + 1}>
                      Parameters
                    </th>
                  </tr>
                  {paramKeys.map((k) => {
                    const values = runs.data!.map((r) => r.params[k]);
                    const differs = new Set(values).size > 1;
                    return (
                      <tr key={`p-${k}`} className={differs ? 'differs' : undefined}>
                        <th scope="row">
                          {k}
                          {differs && <span className="badge">differs</span>}
                        </th>
                        {values.map((v, i) => (
                          <td key={i}>{v ?? '—'}</td>
                        ))}
                      </tr>
                    );
                  })}
                  <tr className="group">
                    <th scope="rowgroup" colSpan={runs.data.length + 1}>
                      Metrics (latest)
                    </th>
                  </tr>
                  {metricKeys.map((k) => {
                    const values = runs.data!.map((r) => r.metrics[k]);
                    const differs = new Set(values.map(String)).size > 1;
                    return (
                      <tr key={`m-${k}`} className={differs ? 'differs' : undefined}>
                        <th scope="row">{k}</th>
                        {values.map((v, i) => (
                          <td key={i} className="num">
                            {formatNumber(v)}
                          </td>
                        ))}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </Section>
          <Section title="Metric curves">
            <ErrorView error={curves.error} title="Metric history" />
            {curves.loading && <Loading what="metric history" />}
            <div className="charts">
              {curves.data?.map((c) => (
                <LazyLineChart key={c.key} title={c.key} series={c.series} xLabel="step" />
              ))}
            </div>
          </Section>
        </>
      )}
    </Page>
  );
}
