/**
 * Serving: what the server's own metrics (`/metrics`) say, refreshed every few seconds — per
 * model rows per second, onnxruntime run time percentiles and the versions taking traffic; per
 * prediction route request rate, error rate and latency percentiles; the prediction cache's hit
 * ratio — and a "try it" panel that sends one prediction built from a model's signature.
 */
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { api, fetchWithKey, unwrap } from '../api/client.ts';
import { Bars } from '../components/bars.tsx';
import { ErrorView } from '../components/error-view.tsx';
import { GuardedButton } from '../components/guarded.tsx';
import { LazyLineChart } from '../components/lazy-chart.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import type { Series } from '../components/line-chart.tsx';
import { formatNumber, formatPercent, formatSeconds } from '../lib/format.ts';
import { bucketDelta, bucketsBy, histogramQuantile, observations, parseMetrics, rateBy, sumBy, type Scrape } from '../lib/prometheus.ts';
import { Link, seg } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

const REFRESH_MS = 2000;
const KEEP = 90;
/** The window rates and percentiles are computed over. */
const WINDOW_MS = 30_000;

export default function ServingPage() {
  return (
    <Page title="Serving">
      <LiveMetrics />
      <Section title="Try it">
        <TryIt />
      </Section>
    </Page>
  );
}

function useScrapes(): { scrapes: readonly Scrape[]; error: unknown } {
  const [scrapes, setScrapes] = useState<readonly Scrape[]>([]);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const controller = new AbortController();
    const tick = async () => {
      try {
        const text = await (await fetchWithKey('/metrics', { signal: controller.signal })).text();
        if (stopped) return;
        const scrape = parseMetrics(text, Date.now());
        setScrapes((s) => [...s.slice(-(KEEP - 1)), scrape]);
        setError(undefined);
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped) timer = window.setTimeout(() => void tick(), REFRESH_MS);
    };
    void tick();
    return () => {
      stopped = true;
      controller.abort();
      if (timer !== undefined) window.clearTimeout(timer);
    };
  }, []);
  return { scrapes, error };
}

/** The scrape to compare the latest with: the newest one at least WINDOW_MS older, else the oldest. */
function baseline(scrapes: readonly Scrape[]): Scrape | undefined {
  const latest = scrapes[scrapes.length - 1];
  if (latest === undefined || scrapes.length < 2) return undefined;
  for (let i = scrapes.length - 2; i >= 0; i--) if (latest.at - scrapes[i]!.at >= WINDOW_MS) return scrapes[i];
  return scrapes[0];
}

function percentiles(older: Scrape | undefined, newer: Scrape, name: string, by: string) {
  const now = bucketsBy(newer, name, by);
  const before = older === undefined ? new Map<string, Map<number, number>>() : bucketsBy(older, name, by);
  const out = new Map<string, { p50?: number; p95?: number; p99?: number; window: boolean }>();
  for (const [key, buckets] of now) {
    const delta = bucketDelta(before.get(key), buckets);
    // Without observations in the window, the figures since the server started.
    const window = observations(delta) > 0;
    const use = window ? delta : buckets;
    out.set(key, { p50: histogramQuantile(0.5, use), p95: histogramQuantile(0.95, use), p99: histogramQuantile(0.99, use), window });
  }
  return out;
}

function LiveMetrics() {
  const { scrapes, error } = useScrapes();
  const latest = scrapes[scrapes.length - 1];
  const older = baseline(scrapes);
  const view = useMemo(() => {
    if (latest === undefined) return undefined;
    const modelRows = older === undefined ? new Map<string, number>() : rateBy(older, latest, 'predictions_total', 'model');
    const totalRows = sumBy(latest, 'predictions_total', 'model');
    const modelRun = percentiles(older, latest, 'prediction_duration_seconds', 'model');
    const live = new Map<string, string[]>();
    for (const s of latest.samples) {
      if (s.name !== 'model_status' || s.value !== 1) continue;
      const m = s.labels['model'] ?? '';
      live.set(m, [...(live.get(m) ?? []), s.labels['version'] ?? '']);
    }
    const models = [...new Set([...totalRows.keys(), ...live.keys()])].sort();

    const reqRate = older === undefined ? new Map<string, number>() : rateBy(older, latest, 'prediction_requests_total', 'route');
    const failRate = older === undefined ? new Map<string, number>() : rateBy(older, latest, 'prediction_requests_failed', 'endpoint');
    const reqTotal = sumBy(latest, 'prediction_requests_total', 'route');
    const failTotal = sumBy(latest, 'prediction_requests_failed', 'endpoint');
    const latency = percentiles(older, latest, 'prediction_latency_seconds', 'endpoint');
    const endpoints = [...reqTotal.keys()].sort();

    const hits = sumBy(latest, 'prediction_cache_hits_total').get('') ?? 0;
    const misses = sumBy(latest, 'prediction_cache_misses_total').get('') ?? 0;
    const hitsBefore = older === undefined ? 0 : (sumBy(older, 'prediction_cache_hits_total').get('') ?? 0);
    const missesBefore = older === undefined ? 0 : (sumBy(older, 'prediction_cache_misses_total').get('') ?? 0);
    const windowLookups = hits - hitsBefore + (misses - missesBefore);
    return {
      models: models.map((m) => ({ model: m, rowsPerSecond: modelRows.get(m), rows: totalRows.get(m) ?? 0, run: modelRun.get(m), live: live.get(m) ?? [] })),
      endpoints: endpoints.map((e) => {
        const r = reqRate.get(e);
        const f = failRate.get(e);
        const total = reqTotal.get(e) ?? 0;
        return {
          endpoint: e,
          rate: r,
          errorRatio: r === undefined || r === 0 ? (total === 0 ? undefined : (failTotal.get(e) ?? 0) / total) : (f ?? 0) / r,
          errorWindow: r !== undefined && r > 0,
          total,
          latency: latency.get(e),
        };
      }),
      cache: {
        window: windowLookups > 0 ? (hits - hitsBefore) / windowLookups : undefined,
        total: hits + misses > 0 ? hits / (hits + misses) : undefined,
        lookups: hits + misses,
      },
    };
  }, [latest, older]);

  const history = useMemo<Series[]>(() => {
    const points: { x: number; y: number | null }[] = [];
    const rows = new Map<string, { x: number; y: number | null }[]>();
    for (let i = 1; i < scrapes.length; i++) {
      const a = scrapes[i - 1]!;
      const b = scrapes[i]!;
      const x = b.at / 1000;
      points.push({ x, y: [...rateBy(a, b, 'prediction_requests_total', 'route').values()].reduce((s, v) => s + v, 0) });
      for (const [m, v] of rateBy(a, b, 'predictions_total', 'model')) rows.set(m, [...(rows.get(m) ?? []), { x, y: v }]);
    }
    return [{ label: 'requests/s (all prediction routes)', points }, ...[...rows.entries()].map(([m, p]) => ({ label: `rows/s ${m}`, points: p }))];
  }, [scrapes]);

  const windowText = older === undefined || latest === undefined ? 'since the server started' : `over the last ${Math.round((latest.at - older.at) / 1000)} s`;
  return (
    <>
      <p className="summary" aria-live="polite">
        From <code>/metrics</code>, refreshed every {REFRESH_MS / 1000} s; rates {windowText}.
        {latest !== undefined && <span className="hint"> Last read {new Date(latest.at).toLocaleTimeString()}.</span>}
      </p>
      <ErrorView error={error} title="Metrics" />
      {view === undefined && error === undefined && <Loading what="metrics" />}
      {view !== undefined && (
        <>
          <Section title="Models">
            {view.models.length === 0 ? (
              <p>No model has served a prediction or been loaded yet.</p>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Per model: rows per second, onnxruntime run time percentiles, versions taking traffic</caption>
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      <th scope="col">Versions taking traffic</th>
                      <th scope="col" className="num">
                        Rows/s
                      </th>
                      <th scope="col" className="num">
                        Rows (total)
                      </th>
                      <th scope="col" className="num">
                        Run p50
                      </th>
                      <th scope="col" className="num">
                        Run p95
                      </th>
                      <th scope="col" className="num">
                        Run p99
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {view.models.map((m) => (
                      <tr key={m.model}>
                        <th scope="row">
                          <Link to={`/models/${seg(m.model)}`}>{m.model}</Link>
                        </th>
                        <td>{m.live.length === 0 ? '—' : m.live.map((v) => `v${v}`).join(', ')}</td>
                        <td className="num">{m.rowsPerSecond === undefined ? '…' : formatNumber(m.rowsPerSecond, 3)}</td>
                        <td className="num">{formatNumber(m.rows)}</td>
                        <td className="num">{formatSeconds(m.run?.p50)}</td>
                        <td className="num">{formatSeconds(m.run?.p95)}</td>
                        <td className="num">{formatSeconds(m.run?.p99)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            <p className="hint">
              Run time is one onnxruntime run (one micro-batch) of the model. The server counts errors and request latency per route, not per model: see the routes
              below.
            </p>
          </Section>
          <Section title="Prediction routes">
            {view.endpoints.length === 0 ? (
              <p>No prediction requests yet.</p>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Per prediction route: request rate, error rate, latency percentiles</caption>
                  <thead>
                    <tr>
                      <th scope="col">Route</th>
                      <th scope="col" className="num">
                        Requests/s
                      </th>
                      <th scope="col" className="num">
                        Requests (total)
                      </th>
                      <th scope="col" className="num">
                        Error rate
                      </th>
                      <th scope="col" className="num">
                        p50
                      </th>
                      <th scope="col" className="num">
                        p95
                      </th>
                      <th scope="col" className="num">
                        p99
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {view.endpoints.map((e) => (
                      <tr key={e.endpoint}>
                        <th scope="row">
                          <code>{e.endpoint}</code>
                        </th>
                        <td className="num">{e.rate === undefined ? '…' : formatNumber(e.rate, 3)}</td>
                        <td className="num">{formatNumber(e.total)}</td>
                        <td className="num">
                          {formatPercent(e.errorRatio, 2)}
                          {!e.errorWindow && e.errorRatio !== undefined && <span className="hint"> (all time)</span>}
                        </td>
                        <td className="num">{formatSeconds(e.latency?.p50)}</td>
                        <td className="num">{formatSeconds(e.latency?.p95)}</td>
                        <td className="num">{formatSeconds(e.latency?.p99)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title="Prediction cache">
            <p>
              Hit ratio {windowText}: <strong data-testid="cache-window">{formatPercent(view.cache.window)}</strong> · since start:{' '}
              <strong>{formatPercent(view.cache.total)}</strong> of {formatNumber(view.cache.lookups)} lookups.
            </p>
          </Section>
          {history[0] !== undefined && history[0].points.length > 1 && (
            <Section title="Traffic">
              <LazyLineChart title="Prediction traffic per second" series={history} xLabel="time" xIsTime height={200} />
            </Section>
          )}
        </>
      )}
    </>
  );
}

type VersionInfo = Awaited<ReturnType<typeof loadVersion>>;

async function loadVersion(name: string, version: number, signal: AbortSignal) {
  const v = await unwrap(api.GET('/models/{name}/versions/{version}', { params: { path: { name, version } }, signal }));
  // Typical values to start from: the medians of the data the version was trained on.
  let medians: Record<string, string> = {};
  if (v.dataset !== null && v.dataset.version !== null) {
    try {
      const d = await unwrap(api.GET('/datasets/{name}/versions/{version}', { params: { path: { name: v.dataset.name, version: v.dataset.version } }, signal }));
      medians = Object.fromEntries(
        d.schema.columns.map((c) => {
          const s = c.stats as { quantiles?: { p50?: number } | null; top?: { value: string }[] };
          return [c.name, s.quantiles?.p50 !== undefined ? String(s.quantiles.p50) : (s.top?.[0]?.value ?? '')];
        }),
      );
    } catch {
      // no dataset to start from: empty fields
    }
  }
  return { version: v, medians };
}

function TryIt() {
  const models = useData((signal) => unwrap(api.GET('/models', { params: { query: { limit: 1000 } }, signal })), []);
  const [name, setName] = useState('');
  const chosen = name || models.data?.models[0]?.name || '';
  const detail = useData(async (signal) => (chosen === '' ? undefined : unwrap(api.GET('/models/{name}', { params: { path: { name: chosen } }, signal }))), [chosen]);
  const [route, setRoute] = useState('');
  // The signature of the version asked for, or for the default route that of the Production version (else the latest).
  const signatureVersion =
    route !== '' ? Number(route) : (detail.data?.versions.filter((v) => v.stage === 'Production').pop()?.version ?? detail.data?.latest_version ?? undefined);
  const info = useData(async (signal) => (chosen === '' || signatureVersion === undefined ? undefined : loadVersion(chosen, signatureVersion, signal)), [chosen, signatureVersion]);

  if (models.error !== undefined) return <ErrorView error={models.error} />;
  if (models.data === undefined) return <Loading what="models" />;
  if (models.data.models.length === 0) return <p>No registered model to try yet.</p>;
  return (
    <div className="try-it">
      <div className="row">
        <span className="inline-field">
          <label htmlFor="try-model">Model</label>
          <select id="try-model"
            value={chosen}
            onChange={(e) => {
              setName(e.target.value);
              setRoute('');
            }}
          >
            {models.data.models.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
              </option>
            ))}
          </select>
        </span>
        <span className="inline-field">
          <label htmlFor="try-version">Version</label>
          <select id="try-version" value={route} onChange={(e) => setRoute(e.target.value)}>
            <option value="">default route</option>
            {[...(detail.data?.versions ?? [])].reverse().map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version} ({v.stage})
              </option>
            ))}
          </select>
        </span>
      </div>
      <ErrorView error={detail.error ?? info.error} />
      {info.data !== undefined && <TryForm key={`${chosen}@${info.data.version.version}`} name={chosen} version={route === '' ? undefined : Number(route)} info={info.data} />}
    </div>
  );
}

type Prediction = Awaited<ReturnType<typeof predict>>;

async function predict(name: string, version: number | undefined, features: Record<string, number | string>) {
  return unwrap(
    api.POST('/models/{name}/predict', {
      params: { path: { name }, query: version === undefined ? {} : { version } },
      body: { features },
    }),
  );
}

function TryForm({ name, version, info }: { name: string; version: number | undefined; info: VersionInfo }) {
  const sig = info.version.signature;
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(sig.feature_names.map((f) => [f, info.medians[f] ?? ''])));
  const [result, setResult] = useState<Prediction | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const features: Record<string, number | string> = {};
      sig.feature_names.forEach((f, i) => {
        const raw = values[f] ?? '';
        features[f] = sig.feature_types[i] === 'categorical' ? raw : raw.trim() === '' ? NaN : Number(raw);
      });
      setResult(await predict(name, version, features));
    } catch (err) {
      setResult(undefined);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const probabilities = result?.probability !== undefined && result.classes !== undefined ? result.classes.map((c, i) => ({ label: String(c), value: result.probability![i] ?? 0 })) : [];
  return (
    <form onSubmit={(e) => void submit(e)}>
      <p className="hint">
        Signature of version {info.version.version} ({sig.task}, {sig.feature_names.length} features). Fields start at the training data’s medians where known.
      </p>
      <div className="feature-grid">
        {sig.feature_names.map((f, i) => {
          const id = `try-${i}`;
          const categories = sig.categories?.[f];
          return (
            <div className="field" key={f}>
              <label htmlFor={id}>{f}</label>
              {categories !== undefined ? (
                <select id={id} value={values[f] ?? ''} onChange={(e) => setValues({ ...values, [f]: e.target.value })}>
                  {categories.map((c) => (
                    <option key={c} value={c}>
                      {c}
                    </option>
                  ))}
                </select>
              ) : (
                <input id={id} type="number" step="any" required value={values[f] ?? ''} onChange={(e) => setValues({ ...values, [f]: e.target.value })} />
              )}
            </div>
          );
        })}
      </div>
      <GuardedButton need="predict" type="submit" className="primary" disabled={busy}>
        {busy ? 'Predicting…' : 'Predict'}
      </GuardedButton>
      <ErrorView error={error} title="Prediction" />
      {result !== undefined && (
        <div className="result" role="status" aria-live="polite">
          <p>
            Prediction: <strong data-testid="prediction">{Array.isArray(result.prediction) ? result.prediction.join(', ') : String(result.prediction)}</strong>
            {result.confidence != null && <> · confidence {formatPercent(result.confidence)}</>} · answered by {result.model_name} v{result.model_version}
            {result.stage === null ? '' : ` (${result.stage})`} in {formatNumber(result.processing_time_ms, 3)} ms{result.cached ? ' from the cache' : ''}
          </p>
          {probabilities.length > 0 && <Bars title="Probability per class" bins={probabilities} />}
          <details>
            <summary>Response body</summary>
            <pre>{JSON.stringify(result, null, 2)}</pre>
          </details>
        </div>
      )}
    </form>
  );
}
