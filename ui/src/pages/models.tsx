import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { Loading, Page } from '../components/page.tsx';
import { Pager, usePageTokens } from '../components/pager.tsx';
import { formatTime } from '../lib/format.ts';
import { Link, seg, useLocation, withQuery } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function ModelsPage() {
  const token = useLocation().query.get('page_token') ?? undefined;
  const pages = usePageTokens();
  const list = useData((signal) => unwrap(api.GET('/models', { params: { query: { limit: 100, ...(token === undefined ? {} : { page_token: token }) } }, signal })), [token]);
  return (
    <Page title="Model registry">
      <ErrorView error={list.error} />
      {list.loading && list.data === undefined && <Loading what="models" />}
      {list.data !== undefined && (
        <>
          {list.data.models.length === 0 ? (
            <p>No registered models yet. A training job with “register as” creates one.</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Registered models</caption>
                <thead>
                  <tr>
                    <th scope="col">Model</th>
                    <th scope="col" className="num">
                      Latest version
                    </th>
                    <th scope="col">Stages</th>
                    <th scope="col">Aliases</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.models.map((m) => (
                    <tr key={m.name}>
                      <th scope="row">
                        <Link to={`/models/${seg(m.name)}`}>{m.name}</Link>
                        {m.description !== null && <div className="hint">{m.description}</div>}
                      </th>
                      <td className="num">{m.latest_version ?? '—'}</td>
                      <td>
                        {m.latest_versions.length === 0
                          ? '—'
                          : m.latest_versions.map((l) => (
                              <span key={l.stage} className={`stage stage-${l.stage.toLowerCase()}`}>
                                {l.stage}: v{l.version}
                              </span>
                            ))}
                      </td>
                      <td>
                        {Object.keys(m.aliases).length === 0
                          ? '—'
                          : Object.entries(m.aliases).map(([a, v]) => (
                              <span key={a} className="alias">
                                @{a} → v{v}
                              </span>
                            ))}
                      </td>
                      <td>{formatTime(m.updated_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager pages={pages} current={token} next={list.data.next_page_token} hrefFor={(t) => withQuery('/models', { page_token: t })} label="Model pages" />
        </>
      )}
    </Page>
  );
}
