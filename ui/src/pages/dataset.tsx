/** One dataset: its versions, and for one version the schema, per-column statistics and histograms. */
import { api, unwrap } from '../api/client.ts';
import { Bars } from '../components/bars.tsx';
import { ErrorView } from '../components/error-view.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { histogramOf, type CategoricalStats, type NumericStats } from '../lib/column-stats.ts';
import { formatBytes, formatNumber, formatTime } from '../lib/format.ts';
import { Link, setQuery, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function DatasetPage({ params }: { params: { name: string } }) {
  const { name } = params;
  const requested = Number(useLocation().query.get('version') ?? NaN);
  const detail = useData((signal) => unwrap(api.GET('/datasets/{name}', { params: { path: { name } }, signal })), [name]);
  const wanted = Number.isFinite(requested) ? requested : undefined;
  const version = useData(
    async (signal) => (wanted === undefined ? undefined : unwrap(api.GET('/datasets/{name}/versions/{version}', { params: { path: { name, version: wanted } }, signal }))),
    [name, wanted],
  );
  const shown = wanted === undefined ? detail.data?.latest : version.data;

  return (
    <Page title={`Dataset ${name}`}>
      <p className="breadcrumbs">
        <Link to="/datasets">Datasets</Link> / {name}
      </p>
      <ErrorView error={detail.error} />
      <ErrorView error={version.error} />
      {detail.loading && detail.data === undefined && <Loading what="the dataset" />}
      {detail.data !== undefined && (
        <Section title="Versions">
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Versions, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col" className="num">
                    Rows
                  </th>
                  <th scope="col" className="num">
                    Columns
                  </th>
                  <th scope="col" className="num">
                    Size
                  </th>
                  <th scope="col">Source</th>
                  <th scope="col">sha-256</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {detail.data.versions.map((v) => (
                  <tr key={v.version} className={v.version === shown?.version ? 'selected' : undefined}>
                    <th scope="row">
                      <button type="button" className="link" aria-pressed={v.version === shown?.version} onClick={() => setQuery({ version: String(v.version) })}>
                        v{v.version}
                      </button>
                    </th>
                    <td className="num">{v.rows.toLocaleString('en-US')}</td>
                    <td className="num">{v.columns}</td>
                    <td className="num">{formatBytes(v.bytes)}</td>
                    <td>{v.source}</td>
                    <td>
                      <code title={v.sha256}>{v.sha256.slice(0, 12)}</code>
                    </td>
                    <td>{formatTime(v.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      {shown !== undefined && (
        <Section title={`Version ${shown.version}: schema and statistics`} id="schema">
          <p className="summary">
            {shown.rows.toLocaleString('en-US')} rows · {shown.columns} columns · delimiter <code>{shown.delimiter === '\t' ? 'tab' : shown.delimiter}</code> · uploaded by{' '}
            <code>{shown.created_by.slice(0, 12)}</code>
          </p>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Columns with their statistics</caption>
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Type</th>
                  <th scope="col" className="num">
                    Missing
                  </th>
                  <th scope="col" className="num">
                    Distinct
                  </th>
                  <th scope="col" className="num">
                    Mean
                  </th>
                  <th scope="col" className="num">
                    Std
                  </th>
                  <th scope="col" className="num">
                    Min
                  </th>
                  <th scope="col" className="num">
                    Median
                  </th>
                  <th scope="col" className="num">
                    Max
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.schema.columns.map((c) => {
                  const n = c.type === 'numeric' ? (c.stats as unknown as NumericStats) : undefined;
                  const s = c.stats as unknown as CategoricalStats;
                  return (
                    <tr key={c.name}>
                      <th scope="row">{c.name}</th>
                      <td>{c.type}</td>
                      <td className="num">{formatNumber(s.missing)}</td>
                      <td className="num">{formatNumber(s.distinct)}</td>
                      <td className="num">{formatNumber(n?.mean)}</td>
                      <td className="num">{formatNumber(n?.std)}</td>
                      <td className="num">{formatNumber(n?.min)}</td>
                      <td className="num">{formatNumber(n?.quantiles?.p50)}</td>
                      <td className="num">{formatNumber(n?.max)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <h3>Distributions</h3>
          <div className="histograms">
            {shown.schema.columns.map((c) => {
              const { bins, exact } = histogramOf(c.type, c.stats);
              return bins.length === 0 ? null : (
                <Bars key={c.name} title={c.name} bins={bins} note={exact ? (c.type === 'numeric' ? 'counts per value' : 'counts per category') : 'rows between quantiles (approximate)'} />
              );
            })}
          </div>
        </Section>
      )}
    </Page>
  );
}
