/**
 * One registered model: versions and their stages, aliases, tags, the traffic split, the audit
 * history, and one version's signature and lineage. Stage moves, aliases and the split are
 * confirmed in a dialog that says what changes for live traffic; each control needs the role the
 * API asks for and is disabled, with the reason, for keys without it.
 */
import { useState, type FormEvent } from 'react';
import { api, fetchWithKey, unwrap } from '../api/client.ts';
import { ConfirmDialog, type ConfirmRequest } from '../components/confirm.tsx';
import { ErrorView } from '../components/error-view.tsx';
import { GuardedButton } from '../components/guarded.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { useAuth } from '../lib/auth.tsx';
import { formatBytes, formatNumber, formatTime } from '../lib/format.ts';
import { aliasImpact, describeDefaultRoute, roleForTransition, splitImpact, splitOf, stagesOf, transitionImpact, type ModelDetail, type Split, type Stage } from '../lib/live-traffic.ts';
import { Link, seg, setQuery, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

const STAGES: readonly Stage[] = ['None', 'Staging', 'Production', 'Archived'];

export default function ModelPage({ params }: { params: { name: string } }) {
  const { name } = params;
  const selectedVersion = Number(useLocation().query.get('version') ?? NaN);
  const model = useData((signal) => unwrap(api.GET('/models/{name}', { params: { path: { name } }, signal })), [name]);
  const history = useData((signal) => unwrap(api.GET('/models/{name}/history', { params: { path: { name }, query: { limit: 100 } }, signal })), [name]);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const ask = (request: ConfirmRequest) => {
    setNotice(undefined);
    setConfirm(request);
  };
  const closed = (done: boolean) => {
    if (done && confirm !== undefined) setNotice(`Done: ${confirm.title.toLowerCase()}.`);
    setConfirm(undefined);
    if (done) {
      model.reload();
      history.reload();
    }
  };

  const m = model.data;
  const versionShown = m === undefined ? undefined : Number.isFinite(selectedVersion) ? selectedVersion : m.latest_version ?? undefined;
  return (
    <Page title={`Model ${name}`}>
      <p className="breadcrumbs">
        <Link to="/models">Registry</Link> / {name}
      </p>
      <ErrorView error={model.error} />
      {model.loading && m === undefined && <Loading what="the model" />}
      {notice !== undefined && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {m !== undefined && (
        <>
          <dl className="facts">
            <dt>Default route serves</dt>
            <dd>{describeDefaultRoute(stagesOf(m), splitOf(m))}</dd>
            <dt>Description</dt>
            <dd>{m.description ?? '—'}</dd>
            <dt>Tags</dt>
            <dd>{Object.keys(m.tags).length === 0 ? '—' : Object.entries(m.tags).map(([k, v]) => <span key={k} className="tag">{`${k}=${v}`}</span>)}</dd>
            <dt>Created</dt>
            <dd>{formatTime(m.created_at)}</dd>
          </dl>

          <Section title="Versions">
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Versions of {name}</caption>
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Stage</th>
                    <th scope="col">Aliases</th>
                    <th scope="col">Metrics</th>
                    <th scope="col">Run</th>
                    <th scope="col">Dataset</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {[...m.versions].reverse().map((v) => (
                    <tr key={v.version} className={v.version === versionShown ? 'selected' : undefined}>
                      <th scope="row">
                        <button type="button" className="link" onClick={() => setQuery({ version: String(v.version) })} aria-pressed={v.version === versionShown}>
                          v{v.version}
                        </button>
                      </th>
                      <td>
                        <span className={`stage stage-${v.stage.toLowerCase()}`}>{v.stage}</span>
                      </td>
                      <td>{v.aliases.length === 0 ? '—' : v.aliases.map((a) => <span key={a} className="alias">@{a}</span>)}</td>
                      <td>
                        {Object.entries(v.metrics)
                          .slice(0, 3)
                          .map(([k, val]) => `${k} ${formatNumber(val)}`)
                          .join(', ') || '—'}
                      </td>
                      <td>{v.run_id === null ? '—' : <Link to={`/runs/${seg(v.run_id)}`}>{v.run_id.slice(0, 8)}</Link>}</td>
                      <td>{v.dataset === null ? '—' : `${v.dataset.name}${v.dataset.version === null ? '' : ` v${v.dataset.version}`}`}</td>
                      <td>{formatTime(v.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Section>

          <div className="columns">
            <Section title="Change a stage">
              <StageForm key={versionShown} model={m} ask={ask} initialVersion={versionShown} />
            </Section>
            <Section title="Aliases">
              <AliasForm key={versionShown} model={m} ask={ask} initialVersion={versionShown} />
            </Section>
          </div>

          <Section title="Traffic split">
            <SplitForm key={m.traffic?.updated_at ?? 'none'} model={m} ask={ask} />
          </Section>

          {versionShown !== undefined && <VersionDetail name={name} version={versionShown} />}
        </>
      )}

      <Section title="History">
        <ErrorView error={history.error} />
        {history.data !== undefined &&
          (history.data.history.length === 0 ? (
            <p>No changes recorded.</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Audit history, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Key</th>
                    <th scope="col">Action</th>
                    <th scope="col">Version</th>
                    <th scope="col">Alias</th>
                    <th scope="col">From</th>
                    <th scope="col">To</th>
                  </tr>
                </thead>
                <tbody>
                  {history.data.history.map((h) => (
                    <tr key={h.id}>
                      <td>{formatTime(h.at)}</td>
                      <td>
                        <code title={h.actor}>{h.actor.slice(0, 8)}</code>
                      </td>
                      <td>{h.action}</td>
                      <td>{h.version ?? '—'}</td>
                      <td>{h.alias ?? '—'}</td>
                      <td className="wrap">{h.from ?? '—'}</td>
                      <td className="wrap">{h.to ?? '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))}
      </Section>
      <ConfirmDialog request={confirm} onClose={closed} />
    </Page>
  );
}

function Impact({ lines }: { readonly lines: readonly string[] }) {
  return (
    <ul className="impact">
      {lines.map((l) => (
        <li key={l}>{l}</li>
      ))}
    </ul>
  );
}

function StageForm({ model, ask, initialVersion }: { model: ModelDetail; ask: (r: ConfirmRequest) => void; initialVersion: number | undefined }) {
  const [version, setVersion] = useState<number>(initialVersion ?? model.latest_version ?? 1);
  const [stage, setStage] = useState<Stage>('Production');
  const [archive, setArchive] = useState(false);
  const from = model.versions.find((v) => v.version === version)?.stage ?? 'None';
  const need = roleForTransition(from, stage);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const archiveExisting = archive && (stage === 'Staging' || stage === 'Production');
    ask({
      title: `Move version ${version} of ${model.name} to ${stage}`,
      body: <Impact lines={transitionImpact(model, version, stage, archiveExisting)} />,
      confirmLabel: `Move to ${stage}`,
      danger: stage === 'Archived',
      run: async () => {
        await unwrap(api.POST('/models/transition', { body: { name: model.name, version, stage, archive_existing_versions: archiveExisting } }));
      },
    });
  };
  return (
    <form className="stack" onSubmit={submit}>
      <span className="inline-field">
        <label htmlFor="stage-version">Version</label>
        <select id="stage-version" value={version} onChange={(e) => setVersion(Number(e.target.value))}>
          {[...model.versions].reverse().map((v) => (
            <option key={v.version} value={v.version}>
              v{v.version} ({v.stage})
            </option>
          ))}
        </select>
      </span>
      <span className="inline-field">
        <label htmlFor="stage-new">New stage</label>
        <select id="stage-new" value={stage} onChange={(e) => setStage(e.target.value as Stage)}>
          {STAGES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </span>
      <label>
        <input type="checkbox" checked={archive} disabled={stage !== 'Staging' && stage !== 'Production'} onChange={(e) => setArchive(e.target.checked)} /> Archive the
        other versions in {stage}
      </label>
      <GuardedButton need={need} type="submit" className="primary">
        Review stage change…
      </GuardedButton>
    </form>
  );
}

function AliasForm({ model, ask, initialVersion }: { model: ModelDetail; ask: (r: ConfirmRequest) => void; initialVersion: number | undefined }) {
  const [alias, setAlias] = useState('');
  const [version, setVersion] = useState<number>(initialVersion ?? model.latest_version ?? 1);
  const { need } = useAuth();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const a = alias.trim();
    if (a === '') return;
    ask({
      title: `Point alias ${a} of ${model.name} at version ${version}`,
      body: <Impact lines={aliasImpact(model, a, version)} />,
      confirmLabel: 'Set alias',
      run: async () => {
        await unwrap(api.PUT('/models/{name}/aliases/{alias}', { params: { path: { name: model.name, alias: a } }, body: { version } }));
      },
    });
  };
  const remove = (a: string) =>
    ask({
      title: `Remove alias ${a} of ${model.name}`,
      body: <Impact lines={aliasImpact(model, a, null)} />,
      confirmLabel: 'Remove alias',
      danger: true,
      run: async () => {
        await unwrap(api.DELETE('/models/{name}/aliases/{alias}', { params: { path: { name: model.name, alias: a } } }));
      },
    });
  return (
    <>
      {Object.keys(model.aliases).length === 0 ? (
        <p>No aliases.</p>
      ) : (
        <ul className="plain">
          {Object.entries(model.aliases).map(([a, v]) => (
            <li key={a}>
              <span className="alias">@{a}</span> → version {v}{' '}
              <GuardedButton need="admin" onClick={() => remove(a)} aria-label={`Remove alias ${a}`}>
                Remove
              </GuardedButton>
            </li>
          ))}
        </ul>
      )}
      <form className="stack" onSubmit={submit}>
        <span className="inline-field">
          <label htmlFor="alias-name">Alias</label>
          <input id="alias-name" value={alias} onChange={(e) => setAlias(e.target.value)} pattern="[A-Za-z0-9_\-]+" placeholder="champion" disabled={need('admin') !== undefined} />
        </span>
        <span className="inline-field">
          <label htmlFor="alias-version">Version</label>
          <select id="alias-version" value={version} onChange={(e) => setVersion(Number(e.target.value))}>
            {[...model.versions].reverse().map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
          </select>
        </span>
        <GuardedButton need="admin" type="submit" className="primary" disabled={alias.trim() === ''}>
          Review alias…
        </GuardedButton>
      </form>
    </>
  );
}

function SplitForm({ model, ask }: { model: ModelDetail; ask: (r: ConfirmRequest) => void }) {
  const current = splitOf(model);
  const [rows, setRows] = useState<{ version: number; weight: string }[]>(
    current === null || current.routes.length === 0 ? [] : current.routes.map((r) => ({ version: r.version, weight: String(r.weight) })),
  );
  const [shadow, setShadow] = useState<readonly number[]>(current?.shadow ?? []);
  const versions = [...model.versions].reverse().filter((v) => v.stage !== 'Archived' || rows.some((r) => r.version === v.version));
  const total = rows.reduce((s, r) => s + (Number(r.weight) || 0), 0);
  const valid = rows.length === 0 || Math.abs(total - 100) < 1e-6;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const next: Split = { routes: rows.map((r) => ({ version: r.version, weight: Number(r.weight) })), shadow };
    ask({
      title: next.routes.length === 0 && next.shadow.length === 0 ? `Clear the traffic split of ${model.name}` : `Set the traffic split of ${model.name}`,
      body: <Impact lines={splitImpact(model, next)} />,
      confirmLabel: 'Apply split',
      run: async () => {
        await unwrap(api.PUT('/models/{name}/traffic', { params: { path: { name: model.name } }, body: { routes: next.routes.map((r) => ({ ...r })), shadow: [...next.shadow] } }));
      },
    });
  };
  return (
    <form onSubmit={submit}>
      <p>
        Requests to the default route of <strong>{model.name}</strong> are split by weight across versions (percentages adding up to 100). Without a split they
        follow the stages.
      </p>
      {rows.length > 0 && (
        <table className="split">
          <caption className="visually-hidden">Weights of the split</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Weight (%)</th>
              <th scope="col">
                <span className="visually-hidden">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                <td>
                  <select aria-label={`Version of route ${i + 1}`} value={r.version} onChange={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, version: Number(e.target.value) } : x)))}>
                    {versions.map((v) => (
                      <option key={v.version} value={v.version}>
                        v{v.version} ({v.stage})
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input
                    aria-label={`Weight of route ${i + 1} in percent`}
                    type="number"
                    min={0}
                    max={100}
                    step="any"
                    value={r.weight}
                    onChange={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, weight: e.target.value } : x)))}
                  />
                </td>
                <td>
                  <button type="button" onClick={() => setRows(rows.filter((_, j) => j !== i))} aria-label={`Remove route ${i + 1}`}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <fieldset className="shadow">
        <legend>Shadow versions (get a copy of the traffic)</legend>
        {versions.map((v) => (
          <label key={v.version}>
            <input
              type="checkbox"
              checked={shadow.includes(v.version)}
              onChange={(e) => setShadow(e.target.checked ? [...shadow, v.version] : shadow.filter((s) => s !== v.version))}
            />{' '}
            v{v.version}
          </label>
        ))}
      </fieldset>
      <div className="row">
        <button type="button" onClick={() => setRows([...rows, { version: versions[0]?.version ?? 1, weight: rows.length === 0 ? '100' : '0' }])}>
          Add route
        </button>
        <span className={valid ? 'hint' : 'invalid'} role="status">
          {rows.length === 0 ? 'No weighted routes: the default route follows the stages.' : `Weights add up to ${Number(total.toFixed(4))} %${valid ? '' : ' (must be 100)'}`}
        </span>
        <GuardedButton need="admin" type="submit" className="primary" disabled={!valid}>
          Review split…
        </GuardedButton>
      </div>
    </form>
  );
}

function VersionDetail({ name, version }: { name: string; version: number }) {
  const v = useData((signal) => unwrap(api.GET('/models/{name}/versions/{version}', { params: { path: { name, version } }, signal })), [name, version]);
  const [error, setError] = useState<unknown>(undefined);
  const download = async () => {
    setError(undefined);
    try {
      const blob = await (await fetchWithKey(`/models/${seg(name)}/versions/${version}/artifact`)).blob();
      const href = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = href;
      a.download = `${name}-v${version}.onnx`;
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(href), 10_000);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title={`Version ${version}`} id="version-detail">
      <ErrorView error={v.error} />
      <ErrorView error={error} title="Download" />
      {v.data !== undefined && (
        <>
          <dl className="facts">
            <dt>Stage</dt>
            <dd>{v.data.stage}</dd>
            <dt>Task</dt>
            <dd>{v.data.signature.task}</dd>
            <dt>Classes</dt>
            <dd>{v.data.signature.class_labels?.join(', ') ?? '—'}</dd>
            <dt>Source</dt>
            <dd>
              <code>{v.data.source}</code>
            </dd>
            <dt>Run</dt>
            <dd>{v.data.run_id === null ? '—' : <Link to={`/runs/${seg(v.data.run_id)}`}>{v.data.run_id}</Link>}</dd>
            <dt>Dataset</dt>
            <dd>
              {v.data.dataset === null ? '—' : <Link to={`/datasets/${seg(v.data.dataset.name)}${v.data.dataset.version === null ? '' : `?version=${v.data.dataset.version}`}`}>{`${v.data.dataset.name}${v.data.dataset.version === null ? '' : ` version ${v.data.dataset.version}`}`}</Link>}
            </dd>
            <dt>Size</dt>
            <dd>
              {formatBytes(v.data.size_bytes)} · sha-256 <code>{v.data.sha256.slice(0, 16)}…</code>
            </dd>
            <dt>Metrics</dt>
            <dd>
              {Object.entries(v.data.metrics)
                .map(([k, val]) => `${k} ${formatNumber(val)}`)
                .join(', ') || '—'}
            </dd>
          </dl>
          {v.data.warnings.length > 0 && (
            <ul className="warnings">
              {v.data.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          )}
          <button type="button" onClick={() => void download()}>
            Download ONNX
          </button>
          <h3>Signature</h3>
          <table>
            <caption className="visually-hidden">Input features in model order</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Feature</th>
                <th scope="col">Type</th>
              </tr>
            </thead>
            <tbody>
              {v.data.signature.feature_names.map((f, i) => (
                <tr key={f}>
                  <td>{i}</td>
                  <th scope="row">{f}</th>
                  <td>{v.data!.signature.feature_types[i]}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Section>
  );
}
