/**
 * An experiment's runs: MLflow filter grammar (`?filter=` of the API), sortable param and metric
 * columns, paging. Sorting and paging happen in the API (`order_by`, `limit`, `page_token`), so
 * an experiment with tens of thousands of runs shows one page at a time.
 */
import { useMemo, useState, type FormEvent } from 'react';
import { api, unwrap, type Schemas } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { Loading, Page } from '../components/page.tsx';
import { Pager, usePageTokens } from '../components/pager.tsx';
import { formatDuration, formatNumber, formatTime } from '../lib/format.ts';
import { Link, navigate, seg, setQuery, useLocation, withQuery } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

type Run = Schemas['TrackingRun'];

const PAGE_SIZES = [25, 50, 100, 250, 1000];
const DEFAULT_ORDER = 'attributes.start_time DESC';

/** An order_by clause for a column: keys are back-quoted so any character is allowed. */
function orderKey(kind: 'metrics' | 'params' | 'attributes', key: string): string {
  return kind === 'attributes' ? `attributes.${key}` : `${kind}.\`${key.replace(/`/g, '')}\``;
}

function parseOrder(order: string): { key: string; desc: boolean } {
  const m = /^(.*?)\s+(ASC|DESC)$/i.exec(order.trim());
  return m === null ? { key: order.trim(), desc: false } : { key: m[1]!, desc: m[2]!.toUpperCase() === 'DESC' };
}

export default function RunsPage({ params }: { params: { name: string } }) {
  const { name } = params;
  const { query } = useLocation();
  const filter = query.get('filter') ?? '';
  const order = query.get('order') ?? DEFAULT_ORDER;
  const limit = Number(query.get('limit') ?? 50);
  const token = query.get('page_token') ?? undefined;
  const allParams = query.get('params') === 'all';
  const pages = usePageTokens(`${filter}|${order}|${limit}`);
  const [draft, setDraft] = useState(filter);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());

  const experiment = useData((signal) => unwrap(api.GET('/experiments/{name}', { params: { path: { name } }, signal })), [name]);
  const runs = useData(
    (signal) =>
      unwrap(
        api.GET('/experiments/{name}/runs', {
          params: {
            path: { name },
            query: { limit, order_by: [order], ...(filter === '' ? {} : { filter }), ...(token === undefined ? {} : { page_token: token }) },
          },
          signal,
        }),
      ),
    [name, filter, order, limit, token],
  );

  const columns = useMemo(() => columnsOf(runs.data?.runs ?? [], allParams), [runs.data, allParams]);
  const current = parseOrder(order);

  const apply = (e: FormEvent) => {
    e.preventDefault();
    setQuery({ filter: draft.trim(), page_token: undefined });
  };
  const sortBy = (key: string) => {
    const desc = current.key === key ? !current.desc : key.startsWith('metrics.');
    setQuery({ order: `${key} ${desc ? 'DESC' : 'ASC'}`, page_token: undefined });
  };
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const sortHeader = (label: string, key: string, numeric: boolean) => {
    const active = current.key === key;
    return (
      <th scope="col" key={key} className={numeric ? 'num' : undefined} aria-sort={active ? (current.desc ? 'descending' : 'ascending') : 'none'}>
        <button type="button" className="sort" onClick={() => sortBy(key)}>
          {label}
          <span aria-hidden="true">{active ? (current.desc ? ' ▼' : ' ▲') : ' ↕'}</span>
          <span className="visually-hidden">{active ? `, sorted ${current.desc ? 'descending' : 'ascending'}` : ', sort'}</span>
        </button>
      </th>
    );
  };

  return (
    <Page
      title={`Experiment ${name}`}
      actions={
        <button type="button" className="primary" disabled={selected.size < 2} onClick={() => navigate(withQuery(`/experiments/${seg(name)}/compare`, { runs: [...selected].join(',') }))}>
          Compare selected ({selected.size})
        </button>
      }
    >
      <p className="breadcrumbs">
        <Link to="/experiments">Experiments</Link> / {name}
      </p>
      <ErrorView error={experiment.error} />
      {experiment.data !== undefined && (
        <p className="summary">
          {experiment.data.run_count.toLocaleString('en-US')} active runs
          {experiment.data.best_run?.metric != null && (
            <>
              {' · best: '}
              <Link to={`/experiments/${seg(name)}/runs/${seg(experiment.data.best_run.run_id)}`}>{experiment.data.best_run.run_name}</Link> ({experiment.data.best_run.metric.key} ={' '}
              {formatNumber(experiment.data.best_run.metric.value)})
            </>
          )}
        </p>
      )}

      <form className="filter" onSubmit={apply} role="search" aria-label="Filter runs">
        <label htmlFor="run-filter">Filter</label>
        <input
          id="run-filter"
          type="search"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="metrics.accuracy > 0.9 and params.max_depth = '3'"
          aria-describedby="run-filter-hint"
          spellCheck={false}
        />
        <button type="submit">Apply</button>
        {filter !== '' && (
          <button
            type="button"
            onClick={() => {
              setDraft('');
              setQuery({ filter: undefined, page_token: undefined });
            }}
          >
            Clear
          </button>
        )}
        <p id="run-filter-hint" className="hint">
          MLflow search syntax: comparisons joined by <code>and</code> over <code>metrics.x</code>, <code>params.x</code>, <code>tags.x</code>,{' '}
          <code>attributes.status</code>, <code>run_name</code>, <code>datasets.name</code>; strings in single quotes; <code>LIKE</code>,{' '}
          <code>IN (…)</code>, <code>IS NULL</code>.
        </p>
      </form>

      <div className="toolbar">
        <span className="inline-field">
          <label htmlFor="runs-per-page">Runs per page</label>
          <select id="runs-per-page" value={limit} onChange={(e) => setQuery({ limit: e.target.value, page_token: undefined })}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </span>
        <label>
          <input type="checkbox" checked={allParams} onChange={(e) => setQuery({ params: e.target.checked ? 'all' : undefined })} /> Show every param (otherwise only params that differ on this page)
        </label>
      </div>

      <ErrorView error={runs.error} title="Run search" />
      {runs.loading && <Loading what="runs" />}
      {runs.data !== undefined && (
        <>
          {runs.data.runs.length === 0 ? (
            <p role="status">No runs match{filter === '' ? '' : ` the filter ${filter}`}.</p>
          ) : (
            <div className="table-wrap">
              <table className="runs" aria-describedby="runs-count">
                <caption id="runs-count">
                  {runs.data.runs.length} run{runs.data.runs.length === 1 ? '' : 's'} on this page
                  {filter === '' ? '' : ', filtered'}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">
                      <span className="visually-hidden">Select</span>
                    </th>
                    {sortHeader('Run', 'attributes.run_name', false)}
                    {sortHeader('Status', 'attributes.status', false)}
                    {sortHeader('Started', 'attributes.start_time', false)}
                    <th scope="col">Duration</th>
                    {columns.metrics.map((k) => sortHeader(k, orderKey('metrics', k), true))}
                    {columns.params.map((k) => sortHeader(k, orderKey('params', k), false))}
                  </tr>
                </thead>
                <tbody>
                  {runs.data.runs.map((r) => (
                    <tr key={r.run_id} className={selected.has(r.run_id) ? 'selected' : undefined}>
                      <td>
                        <input type="checkbox" checked={selected.has(r.run_id)} onChange={() => toggle(r.run_id)} aria-label={`Select run ${r.run_name} for comparison`} />
                      </td>
                      <th scope="row">
                        <Link to={`/experiments/${seg(name)}/runs/${seg(r.run_id)}`} title={r.run_id}>
                          {r.run_name || r.run_id}
                        </Link>
                      </th>
                      <td>
                        <span className={`status status-${r.status.toLowerCase()}`}>{r.status}</span>
                      </td>
                      <td>{formatTime(r.start_time)}</td>
                      <td>{formatDuration(r.start_time, r.end_time)}</td>
                      {columns.metrics.map((k) => (
                        <td key={k} className="num">
                          {formatNumber(r.metrics[k])}
                        </td>
                      ))}
                      {columns.params.map((k) => (
                        <td key={k}>{r.params[k] ?? '—'}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager
            pages={pages}
            current={token}
            next={runs.data.next_page_token}
            hrefFor={(t) => withQuery(`/experiments/${seg(name)}`, { filter, order: order === DEFAULT_ORDER ? undefined : order, limit: limit === 50 ? undefined : limit, params: allParams ? 'all' : undefined, page_token: t })}
            label="Run pages"
          />
        </>
      )}
    </Page>
  );
}

/** Metric columns (all) and param columns (all, or those whose values differ on the page). */
function columnsOf(runs: readonly Run[], allParams: boolean): { metrics: string[]; params: string[] } {
  const metrics = new Set<string>();
  const params = new Map<string, Set<string>>();
  for (const r of runs) {
    for (const k of Object.keys(r.metrics)) metrics.add(k);
    for (const [k, v] of Object.entries(r.params)) {
      let values = params.get(k);
      if (values === undefined) params.set(k, (values = new Set()));
      values.add(v);
    }
  }
  const paramKeys = [...params.entries()]
    .filter(([k, values]) => allParams || values.size > 1 || runs.some((r) => r.params[k] === undefined))
    .map(([k]) => k)
    .sort();
  return { metrics: [...metrics].sort(), params: paramKeys };
}
