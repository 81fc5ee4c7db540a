import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { Loading, Page } from '../components/page.tsx';
import { Pager, usePageTokens } from '../components/pager.tsx';
import { formatNumber, formatTime } from '../lib/format.ts';
import { Link, seg, useLocation, withQuery } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function ExperimentsPage() {
  const { query } = useLocation();
  const token = query.get('page_token') ?? undefined;
  const pages = usePageTokens();
  const list = useData(
    (signal) => unwrap(api.GET('/experiments', { params: { query: { limit: 50, ...(token === undefined ? {} : { page_token: token }) } }, signal })),
    [token],
  );
  return (
    <Page title="Experiments">
      <ErrorView error={list.error} />
      {list.loading && list.data === undefined && <Loading what="experiments" />}
      {list.data !== undefined && (
        <>
          {list.data.experiments.length === 0 ? (
            <p>No experiments yet. A training job logs its run into one (see Training).</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Experiments</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col">Best run</th>
                    <th scope="col">Best metric</th>
                    <th scope="col">Last update</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.experiments.map((e) => (
                    <tr key={e.experiment_id}>
                      <th scope="row">
                        <Link to={`/experiments/${seg(e.name)}`}>{e.name}</Link>
                      </th>
                      <td className="num">{e.run_count.toLocaleString('en-US')}</td>
                      <td>{e.best_run === null ? '—' : <Link to={`/experiments/${seg(e.name)}/runs/${seg(e.best_run.run_id)}`}>{e.best_run.run_name}</Link>}</td>
                      <td>{e.best_run?.metric == null ? '—' : `${e.best_run.metric.key} = ${formatNumber(e.best_run.metric.value)} (${e.best_run.metric.goal})`}</td>
                      <td>{formatTime(e.last_update_time)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager pages={pages} current={token} next={list.data.next_page_token} hrefFor={(t) => withQuery('/experiments', { page_token: t })} label="Experiment pages" />
        </>
      )}
    </Page>
  );
}
