/**
 * Training: the form that starts a job (its params fields come from `GET /train/algorithms`, the
 * same schemas `POST /train` validates with) and the list of jobs, refreshed while any runs.
 */
import { useMemo, useState, type FormEvent } from 'react';
import { ApiError, api, unwrap } from '../api/client.ts';
import type { paths } from '../api/schema.d.ts';
import { ErrorView } from '../components/error-view.tsx';
import { GuardedButton } from '../components/guarded.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { useAuth } from '../lib/auth.tsx';
import { formatDuration, formatTime } from '../lib/format.ts';
import { describeParam, keywordsOf, parseParam, showValue, type ParamField, type ParamValue } from '../lib/param-schema.ts';
import { Link, navigate, seg, setQuery, useLocation } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

type TrainRequest = NonNullable<paths['/train']['post']['requestBody']>['content']['application/json'];
type Task = 'classification' | 'regression';
type JobStatus = NonNullable<NonNullable<paths['/train/jobs']['get']['parameters']['query']>['status']>;
const STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export default function TrainingPage() {
  return (
    <Page title="Training">
      <div className="columns wide-left">
        <Section title="Start a training job">
          <TrainForm />
        </Section>
        <Section title="Jobs">
          <JobList />
        </Section>
      </div>
    </Page>
  );
}

function JobList() {
  const status = (useLocation().query.get('status') ?? '') as JobStatus | '';
  const jobs = useData(
    (signal) => unwrap(api.GET('/train/jobs', { params: { query: { limit: 25, ...(status === '' ? {} : { status }) } }, signal })),
    [status],
    { pollMs: 2000, shouldPoll: (d) => d?.jobs.some((j) => j.status === 'queued' || j.status === 'running') ?? false },
  );
  return (
    <>
      <span className="inline-field">
        <label htmlFor="jobs-status">Status</label>
        <select id="jobs-status" value={status} onChange={(e) => setQuery({ status: e.target.value })}>
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </span>
      <ErrorView error={jobs.error} />
      {jobs.loading && jobs.data === undefined && <Loading what="jobs" />}
      {jobs.data !== undefined &&
        (jobs.data.jobs.length === 0 ? (
          <p>No jobs{status === '' ? '' : ` with status ${status}`}.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Training jobs, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Status</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Created</th>
                  <th scope="col">Took</th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.jobs.map((j) => (
                  <tr key={j.job_id}>
                    <th scope="row">
                      <Link to={`/training/${seg(j.job_id)}`}>{j.experiment_name ?? j.job_id.slice(0, 8)}</Link>
                      <div className="hint">
                        <code>{j.job_id.slice(0, 8)}</code>
                      </div>
                    </th>
                    <td>
                      <span className={`status status-${j.status}`}>{j.status}</span>
                    </td>
                    <td>
                      {Math.round(j.progress.percent)} %{j.progress.stage === null ? '' : ` · ${j.progress.stage}`}
                    </td>
                    <td>{formatTime(j.created_at)}</td>
                    <td>{formatDuration(j.started_at, j.finished_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </>
  );
}

function TrainForm() {
  const { need } = useAuth();
  const datasets = useData((signal) => unwrap(api.GET('/datasets', { params: { query: { limit: 1000 } }, signal })), []);
  const catalogue = useData((signal) => unwrap(api.GET('/train/algorithms', { signal })), []);
  const [dataset, setDataset] = useState('');
  const [datasetVersion, setDatasetVersion] = useState('');
  const chosen = dataset || datasets.data?.datasets[0]?.name || '';
  const detail = useData(
    async (signal) => (chosen === '' ? undefined : unwrap(api.GET('/datasets/{name}', { params: { path: { name: chosen } }, signal }))),
    [chosen],
  );
  const versionDetail = useData(
    async (signal) =>
      chosen === '' || datasetVersion === '' ? undefined : unwrap(api.GET('/datasets/{name}/versions/{version}', { params: { path: { name: chosen, version: Number(datasetVersion) } }, signal })),
    [chosen, datasetVersion],
  );
  const columns = (datasetVersion === '' ? detail.data?.latest.schema.columns : versionDetail.data?.schema.columns) ?? [];
  const builtinTarget = detail.data?.builtin_info?.target;
  const [target, setTarget] = useState('');
  const targetChosen = target !== '' && columns.some((c) => c.name === target) ? target : (builtinTarget ?? columns[columns.length - 1]?.name ?? '');
  const [excluded, setExcluded] = useState<ReadonlySet<string>>(new Set());
  const [task, setTask] = useState<Task | ''>('');
  const [algorithm, setAlgorithm] = useState('random_forest');
  const [paramText, setParamText] = useState<Record<string, string>>({});
  const [testSize, setTestSize] = useState('');
  const [seed, setSeed] = useState('');
  const [stratify, setStratify] = useState(true);
  const [experiment, setExperiment] = useState('');
  const [runName, setRunName] = useState('');
  const [registerAs, setRegisterAs] = useState('');
  const [promoteTo, setPromoteTo] = useState<'' | 'Staging' | 'Production'>('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  const algorithms = catalogue.data?.algorithms ?? [];
  const available = algorithms.filter((a) => task === '' || a.tasks.includes(task));
  const algo = available.find((a) => a.name === algorithm) ?? available[0];
  const fields = useMemo(() => (algo === undefined ? [] : Object.entries((algo.params_schema['properties'] ?? {}) as Record<string, unknown>).map(([n, s]) => describeParam(n, s))), [algo]);
  const defaults = algo === undefined ? {} : (algo.defaults[task === '' ? algo.tasks[0]! : task] ?? {});
  const fieldErrors = new Map<string, string>();
  if (error instanceof ApiError) for (const e of error.native?.errors ?? []) fieldErrors.set(e.path, e.message);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (algo === undefined) return;
    setError(undefined);
    const params: Record<string, ParamValue> = {};
    for (const f of fields) {
      const v = parseParam(f, paramText[f.name] ?? '');
      if (v !== undefined) params[f.name] = v;
    }
    const features = columns.map((c) => c.name).filter((c) => c !== targetChosen && !excluded.has(c));
    const validation: NonNullable<TrainRequest['validation']> = {
      ...(testSize.trim() === '' ? {} : { test_size: Number(testSize) }),
      ...(seed.trim() === '' ? {} : { seed: Number(seed) }),
      ...(stratify ? {} : { stratify: false }),
    };
    const body: TrainRequest = {
      dataset: { name: chosen, ...(datasetVersion === '' ? {} : { version: Number(datasetVersion) }) },
      target: targetChosen,
      algorithm: algo.name as TrainRequest['algorithm'],
      ...(excluded.size === 0 ? {} : { features }),
      ...(task === '' ? {} : { task }),
      ...(Object.keys(params).length === 0 ? {} : { params }),
      ...(Object.keys(validation).length === 0 ? {} : { validation }),
      ...(experiment.trim() === '' ? {} : { experiment_name: experiment.trim() }),
      ...(runName.trim() === '' ? {} : { run_name: runName.trim() }),
      ...(registerAs.trim() === '' ? {} : { register_as: registerAs.trim() }),
      ...(promoteTo === '' ? {} : { promote_to: promoteTo }),
    };
    setBusy(true);
    try {
      const job = await unwrap(api.POST('/train', { body }));
      navigate(`/training/${seg(job.job_id)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (datasets.error !== undefined || catalogue.error !== undefined)
    return (
      <>
        <ErrorView error={datasets.error} title="Datasets" />
        <ErrorView error={catalogue.error} title="Algorithms" />
      </>
    );
  if (datasets.data === undefined || catalogue.data === undefined) return <Loading what="datasets and algorithms" />;

  const productionReason = need('admin');
  return (
    <form className="train-form" onSubmit={(e) => void submit(e)} noValidate>
      <fieldset>
        <legend>Data</legend>
        <div className="field">
          <label htmlFor="train-dataset">Dataset</label>
          <select
            id="train-dataset"
            value={chosen}
            onChange={(e) => {
              setDataset(e.target.value);
              setDatasetVersion('');
              setTarget('');
              setExcluded(new Set());
            }}
          >
            {datasets.data.datasets.map((d) => (
              <option key={d.name} value={d.name}>
                {d.name}
                {d.builtin ? ' (built-in)' : ''}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="train-dataset-version">Version</label>
          <select id="train-dataset-version" value={datasetVersion} onChange={(e) => setDatasetVersion(e.target.value)}>
            <option value="">latest{detail.data?.latest_version == null ? '' : ` (v${detail.data.latest_version})`}</option>
            {detail.data?.versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version} · {v.rows.toLocaleString('en-US')} rows
              </option>
            ))}
          </select>
        </div>
        <ErrorView error={detail.error ?? versionDetail.error} title="Dataset" />
        <div className="field">
          <label htmlFor="train-target">Target column</label>
          <select id="train-target" value={targetChosen} onChange={(e) => setTarget(e.target.value)}>
            {columns.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name} ({c.type})
              </option>
            ))}
          </select>
        </div>
        {columns.length > 1 && (
          <fieldset className="features">
            <legend>Features (all but the target by default)</legend>
            {columns
              .filter((c) => c.name !== targetChosen)
              .map((c) => (
                <label key={c.name}>
                  <input
                    type="checkbox"
                    checked={!excluded.has(c.name)}
                    onChange={(e) => {
                      const next = new Set(excluded);
                      if (e.target.checked) next.delete(c.name);
                      else next.add(c.name);
                      setExcluded(next);
                    }}
                  />{' '}
                  {c.name}
                </label>
              ))}
          </fieldset>
        )}
      </fieldset>

      <fieldset>
        <legend>Model</legend>
        <div className="field">
          <label htmlFor="train-task">Task</label>
          <select id="train-task" value={task} onChange={(e) => setTask(e.target.value as Task | '')}>
            <option value="">inferred from the target</option>
            <option value="classification">classification</option>
            <option value="regression">regression</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="train-algorithm">Algorithm</label>
          <select
            id="train-algorithm"
            value={algo?.name ?? ''}
            onChange={(e) => {
              setAlgorithm(e.target.value);
              setParamText({});
            }}
          >
            {available.map((a) => (
              <option key={a.name} value={a.name}>
                {a.name.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </div>
        {fields.map((f) => (
          <ParamInput
            key={`${algo?.name}-${f.name}`}
            field={f}
            defaultValue={defaults[f.name]}
            text={paramText[f.name] ?? ''}
            error={fieldErrors.get(`/body/params/${f.name}`)}
            onChange={(t) => setParamText({ ...paramText, [f.name]: t })}
          />
        ))}
      </fieldset>

      <fieldset>
        <legend>Validation split</legend>
        <div className="field">
          <label htmlFor="train-test-size">Hold-out share</label>
          <input
            id="train-test-size"
            type="number"
            min={0}
            max={1}
            step="any"
            value={testSize}
            placeholder={String(catalogue.data.validation.test_size)}
            onChange={(e) => setTestSize(e.target.value)}
            aria-describedby="train-test-size-hint"
          />
          <p id="train-test-size-hint" className="hint">
            between 0 and 1 (exclusive); default {catalogue.data.validation.test_size}
          </p>
        </div>
        <div className="field">
          <label htmlFor="train-seed">Seed</label>
          <input id="train-seed" type="number" step={1} value={seed} placeholder={String(catalogue.data.validation.seed)} onChange={(e) => setSeed(e.target.value)} />
        </div>
        <label>
          <input type="checkbox" checked={stratify} onChange={(e) => setStratify(e.target.checked)} /> Stratify by class (classification)
        </label>
      </fieldset>

      <fieldset>
        <legend>Tracking and registry</legend>
        <div className="field">
          <label htmlFor="train-experiment">Experiment</label>
          <input id="train-experiment" value={experiment} onChange={(e) => setExperiment(e.target.value)} placeholder="server default" />
        </div>
        <div className="field">
          <label htmlFor="train-run-name">Run name</label>
          <input id="train-run-name" value={runName} onChange={(e) => setRunName(e.target.value)} placeholder="generated" />
        </div>
        <div className="field">
          <label htmlFor="train-register">Register as model</label>
          <input id="train-register" value={registerAs} onChange={(e) => setRegisterAs(e.target.value)} placeholder="do not register" />
        </div>
        <div className="field">
          <label htmlFor="train-promote">Promote to</label>
          <select id="train-promote" value={promoteTo} onChange={(e) => setPromoteTo(e.target.value as '' | 'Staging' | 'Production')} disabled={registerAs.trim() === ''} aria-describedby="train-promote-hint">
            <option value="">no promotion</option>
            <option value="Staging">Staging</option>
            <option value="Production" disabled={productionReason !== undefined}>
              Production{productionReason === undefined ? '' : ' (needs admin)'}
            </option>
          </select>
          <p id="train-promote-hint" className="hint">
            {registerAs.trim() === '' ? 'Only a registered model can be promoted.' : productionReason === undefined ? 'Production changes live traffic of the model’s default route.' : `Production ${productionReason}.`}
          </p>
        </div>
      </fieldset>

      <ErrorView error={error} title="The job was not started" />
      <GuardedButton need="train" type="submit" className="primary" disabled={busy || chosen === '' || targetChosen === ''}>
        {busy ? 'Starting…' : 'Start training'}
      </GuardedButton>
    </form>
  );
}

function ParamInput({
  field,
  defaultValue,
  text,
  error,
  onChange,
}: {
  field: ParamField;
  defaultValue: ParamValue | undefined;
  text: string;
  error: string | undefined;
  onChange: (text: string) => void;
}) {
  const id = `param-${field.name}`;
  const hint = [field.description, `default ${showValue(defaultValue)}`, field.numeric?.range, field.control === 'text' ? `or ${keywordsOf(field).join(', ')}` : undefined]
    .filter((x) => x !== undefined && x !== '')
    .join('; ');
  const describedBy = `${id}-hint${error === undefined ? '' : ` ${id}-error`}`;
  return (
    <div className="field">
      <label htmlFor={id}>{field.name}</label>
      {field.control === 'choice' ? (
        <select id={id} value={text} onChange={(e) => onChange(e.target.value)} aria-describedby={describedBy} aria-invalid={error !== undefined}>
          <option value="">default ({showValue(defaultValue)})</option>
          {field.choices.map((c) => (
            <option key={String(c)} value={JSON.stringify(c)}>
              {showValue(c)}
            </option>
          ))}
        </select>
      ) : field.control === 'number' ? (
        <input
          id={id}
          type="number"
          step={field.numeric?.integer === true ? 1 : 'any'}
          min={field.numeric?.min}
          max={field.numeric?.max}
          value={text}
          placeholder={showValue(defaultValue)}
          onChange={(e) => onChange(e.target.value)}
          aria-describedby={describedBy}
          aria-invalid={error !== undefined}
        />
      ) : (
        <>
          <input id={id} type="text" inputMode="decimal" list={`${id}-list`} value={text} placeholder={showValue(defaultValue)} onChange={(e) => onChange(e.target.value)} aria-describedby={describedBy} aria-invalid={error !== undefined} />
          <datalist id={`${id}-list`}>
            {keywordsOf(field).map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
        </>
      )}
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      {error !== undefined && (
        <p id={`${id}-error`} className="invalid">
          {error}
        </p>
      )}
    </div>
  );
}
