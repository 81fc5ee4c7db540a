/**
 * The scenarios of issue 11, each a function that drives the cluster, injects its fault and
 * returns checks (expected against what happened), the load figures and the recovery time.
 * A scenario never throws for a failed expectation; it reports it. It throws only when the
 * harness itself cannot go on (then the run says so and the cluster is healed before the next).
 */
import { API_KEY, MODEL, freePort, type Cluster, type Log } from './cluster.ts';
import { isOk, json, poll, request, since, sleep, summarize, type HttpResult } from './http.ts';
import { Load, Prober, summarizeSamples, type LoadStats, type Probe } from './load.ts';
import { describeExit, shorten, type ManagedProcess } from './proc.ts';

export interface Check {
  readonly name: string;
  readonly expected: string;
  readonly actual: string;
  readonly pass: boolean;
}

export interface ScenarioResult {
  readonly checks: Check[];
  load?: LoadStats;
  /** Milliseconds from the end of the fault to full recovery; null when it did not recover. */
  recoveryMs?: number | null;
  readonly notes: string[];
}

export interface Ctx {
  readonly cluster: Cluster;
  readonly log: Log;
  /** Requests per second of the load scenarios. */
  readonly rate: number;
  /** How long each backing service stays down. */
  readonly outageMs: number;
  readonly state: SharedState;
}

/** Facts set up once (`prepare`) and used by several scenarios. */
export interface SharedState {
  /** Dataset whose random-forest fit takes long enough to kill a worker mid-fit. */
  longDataset: string;
  longParams: Record<string, unknown>;
  /** ONNX bytes of the served model (re-uploaded in the S3 scenario). */
  onnx?: Buffer;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

const AUTH = { 'x-api-key': API_KEY };

function check(result: ScenarioResult, name: string, expected: string, actual: string, pass: boolean): void {
  result.checks.push({ name, expected, actual, pass });
}

function newResult(): ScenarioResult {
  return { checks: [], notes: [] };
}

/** A random iris-like row, so predictions mostly miss the cache and reach the model. */
function randomRow(): string {
  const f = [4 + Math.random() * 4, 2 + Math.random() * 2.5, 1 + Math.random() * 6, Math.random() * 2.5].map((v) => Math.round(v * 1000) / 1000);
  return JSON.stringify({ features: f });
}

/** Synthetic classification CSV: `cols` numeric features, a label from a noisy rule. */
function syntheticCsv(rows: number, cols: number, seed: number): string {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const lines = [[...Array.from({ length: cols }, (_, j) => `f${j}`), 'label'].join(',')];
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: cols }, () => Math.round((rnd() * 10 - 5) * 1000) / 1000);
    const score = x[0]! * 0.8 - x[1]! * 0.5 + x[2]! * x[3]! * 0.1 + (rnd() - 0.5) * 2;
    lines.push([...x, score > 0 ? 1 : 0].join(','));
  }
  return `${lines.join('\n')}\n`;
}

async function submitJob(base: string, body: Record<string, unknown>, timeoutMs = 15_000): Promise<HttpResult> {
  return request(`${base}/train`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body), timeoutMs });
}

async function jobStatus(base: string, id: string): Promise<any> {
  const r = await request(`${base}/train/status/${id}`, { headers: AUTH, timeoutMs: 5000 });
  return r.status === 200 ? json(r) : undefined;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

async function waitJob(base: string, id: string, deadlineMs: number): Promise<any> {
  let last: any;
  const done = await poll(
    async () => {
      last = (await jobStatus(base, id)) ?? last;
      return last !== undefined && TERMINAL.has(last.status) ? last : undefined;
    },
    deadlineMs,
    500,
  );
  return done ?? last;
}

/** Runs of an experiment with their status (empty when it does not exist yet). */
async function runsOf(base: string, experiment: string): Promise<Array<{ run_id: string; status: string; end_time?: unknown }>> {
  const r = await request(`${base}/experiments/${encodeURIComponent(experiment)}/runs?limit=1000`, { headers: AUTH, timeoutMs: 10_000 });
  const body = json(r);
  const runs = (body?.runs ?? body?.items ?? []) as any[];
  return runs.map((run) => ({ run_id: run.run_id ?? run.info?.run_id, status: run.status ?? run.info?.status, end_time: run.end_time ?? run.info?.end_time }));
}

function unexpectedExits(ctx: Ctx, since0: number, which: readonly ManagedProcess[] = [...ctx.cluster.apis, ...ctx.cluster.workers]): string[] {
  return which.flatMap((p) => p.unexpectedExitsSince(since0).map((e) => `${p.name} ${describeExit(e)} at +${Math.round((e.at - since0) / 1000)} s${crashLine(p)}`));
}

function crashLine(p: ManagedProcess): string {
  const why = p.crashSummary();
  return why === undefined ? '' : ` (${why})`;
}

function fmtFailures(f: Record<string, number>): string {
  const entries = Object.entries(f);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${v}x ${k}`).join(', ');
}

function loadCheck(result: ScenarioResult, name: string, stats: LoadStats, maxLatencyMs: number): void {
  const failed = stats.sent - stats.ok;
  check(result, `${name}: every prediction 2xx`, `0 of ${stats.sent} failed`, `${failed} failed (${fmtFailures(stats.failures)})`, failed === 0);
  check(result, `${name}: latency bounded`, `max <= ${maxLatencyMs} ms`, `p50 ${Math.round(stats.p50)} ms, p99 ${Math.round(stats.p99)} ms, max ${Math.round(stats.max)} ms`, stats.max <= maxLatencyMs);
}

/** Time from `from` to the last failed sample (0 when none failed after `from`). */
function lastFailureAfter(stats: LoadStats, from: number): number {
  const failed = stats.samples.filter((s) => !s.ok && s.sentAt >= from);
  if (failed.length === 0) return 0;
  return Math.max(...failed.map((s) => s.sentAt + s.ms)) - from;
}

function probeSummary(probes: readonly Probe[]): string {
  const kinds: Record<string, number> = {};
  for (const p of probes) {
    const k = p.status > 0 ? String(p.status) : (p.error ?? 'error');
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  const slowest = probes.length === 0 ? 0 : Math.max(...probes.map((p) => p.ms));
  return `${probes.length} probes: ${fmtFailures(kinds)}; slowest ${Math.round(slowest)} ms`;
}

/** Upload of a model version from ONNX bytes. */
async function uploadVersion(base: string, onnx: Buffer, timeoutMs: number): Promise<HttpResult> {
  return request(`${base}/models/${MODEL}/versions?description=harness`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/octet-stream' },
    body: onnx,
    timeoutMs,
  });
}

/**
 * Once before the scenarios: a dataset for long fits, the served model (logistic regression on
 * built-in iris, registered as cluster-model and promoted to Production), both APIs ready.
 */
export async function prepare(ctx: Ctx): Promise<void> {
  const { cluster, state } = ctx;
  const api1 = cluster.apiUrl(0);
  const csv = syntheticCsv(20_000, 12, 7);
  const up = await request(`${api1}/datasets/${state.longDataset}`, { method: 'POST', headers: { ...AUTH, 'content-type': 'text/csv' }, body: csv, timeoutMs: 60_000 });
  if (!isOk(up)) throw new Error(`dataset upload failed: ${summarize(up)}`);
  const sub = await submitJob(api1, {
    experiment_name: 'cluster-setup',
    dataset: { name: 'iris' },
    target: 'target',
    algorithm: 'logistic_regression',
    register_as: MODEL,
    promote_to: 'Production',
  });
  const id = json(sub)?.job_id as string | undefined;
  if (sub.status !== 202 || id === undefined) throw new Error(`setup training job not accepted: ${summarize(sub)}`);
  const end = await waitJob(api1, id, 120_000);
  if (end?.status !== 'succeeded') throw new Error(`setup training job did not succeed: ${JSON.stringify(end)?.slice(0, 400)}`);
  const notReady = await cluster.waitReady(60_000);
  if (notReady.length > 0) throw new Error(`not ready after the model was promoted: ${notReady.join(', ')}`);
  const art = await request(`${api1}/models/${MODEL}/versions/${end.model?.version ?? 1}/artifact`, { headers: AUTH, timeoutMs: 30_000 });
  if (art.status === 200) state.onnx = art.raw;
  ctx.log(`prepared: dataset ${state.longDataset}, ${MODEL} v${end.model?.version} in Production`);
}

// ---------------------------------------------------------------------------------------------

const jobsAcrossApis: Scenario = {
  name: 'jobs',
  title: 'job submitted to API 1 runs on a worker, reads the same from API 2',
  async run(ctx) {
    const result = newResult();
    const [api1, api2] = ctx.cluster.apiUrls as [string, string];
    // The workers' own /metrics (PROMETHEUS_PORT): the duration histogram is observed where a job ends.
    const workerDurations = async (): Promise<{ count: number; unreachable: string[] }> => {
      const answers = await Promise.all(ctx.cluster.workerMetricsUrls.map((u) => request(`${u}/metrics`, { timeoutMs: 5000 })));
      const unreachable = answers.flatMap((r, i) => (r.status === 200 ? [] : [`worker${i + 1}: ${summarize(r, 80)}`]));
      const text = answers.map((r) => (r.status === 200 ? r.body : '')).join('\n');
      return { count: [...text.matchAll(/^training_job_duration_seconds_count\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0), unreachable };
    };
    const before = await workerDurations();
    const t0 = Date.now();
    const sub = await submitJob(api1, { experiment_name: 'cluster-jobs', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' });
    const id = json(sub)?.job_id as string | undefined;
    check(result, 'submit to API 1', '202 with job_id', summarize(sub), sub.status === 202 && id !== undefined);
    if (id === undefined) return result;
    const running = await poll(async () => {
      const w = await ctx.cluster.jobWorker(id);
      return w.workerId !== null ? w : undefined;
    }, 30_000, 100);
    const end = await waitJob(api1, id, 90_000);
    check(result, 'job succeeds', 'succeeded within 90 s', `${end?.status ?? 'no status'} after ${since(t0)} ms${end?.error ? `: ${end.error}` : ''}`, end?.status === 'succeeded');
    const ranOn = running?.process?.name ?? `unknown (${running?.workerId ?? 'never claimed'})`;
    check(result, 'ran on a worker process', 'worker1 or worker2', ranOn, running?.process !== undefined && running.process.name.startsWith('worker'));
    const [s1, s2] = await Promise.all([request(`${api1}/train/status/${id}`, { headers: AUTH }), request(`${api2}/train/status/${id}`, { headers: AUTH })]);
    check(result, 'status identical on API 1 and API 2', 'same JSON body', s1.body === s2.body ? 'same' : `API 1: ${s1.body.slice(0, 120)} | API 2: ${s2.body.slice(0, 120)}`, s1.status === 200 && s1.body === s2.body);
    const runs = await runsOf(api2, 'cluster-jobs');
    check(result, 'tracking run finished', 'run FINISHED', runs.map((r) => r.status).join(', ') || 'no run', runs.length > 0 && runs.every((r) => r.status === 'FINISHED'));
    // What Prometheus sees of training: the job counts on the APIs' /metrics (from the jobs table),
    // the duration histogram on the workers' own /metrics, summed over the workers.
    const metrics = (await Promise.all(ctx.cluster.apiUrls.map((u) => request(`${u}/metrics`, { timeoutMs: 5000 })))).map((r) => r.body).join('\n');
    const succeeded = Number(/^training_jobs\{status="succeeded"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    // The job's row is written before the worker observes its duration: poll briefly for the sample.
    const after = (await poll(async () => {
      const now = await workerDurations();
      return now.count > before.count ? now : undefined;
    }, 10_000, 200)) ?? (await workerDurations());
    const unreachable = [...new Set([...before.unreachable, ...after.unreachable])];
    check(
      result,
      'training metrics reach Prometheus',
      'training_jobs{status="succeeded"} >= 1 on the APIs\' /metrics; sum of training_job_duration_seconds_count over the workers\' /metrics up by >= 1',
      `training_jobs{status="succeeded"} ${succeeded}, workers' training_job_duration_seconds_count ${before.count} -> ${after.count}${unreachable.length > 0 ? `; unreachable: ${unreachable.join('; ')}` : ''}`,
      succeeded >= 1 && after.count - before.count >= 1 && unreachable.length === 0,
    );
    return result;
  },
};

/** kill -9 (or SIGTERM) of the worker holding a long job while it fits. */
function workerDeath(signal: 'SIGKILL' | 'SIGTERM'): Scenario {
  const name = signal === 'SIGKILL' ? 'worker-kill' : 'worker-sigterm';
  return {
    name,
    title: `${signal === 'SIGKILL' ? 'kill -9' : 'SIGTERM'} of the worker holding a job mid-fit`,
    async run(ctx) {
      const result = newResult();
      const api1 = ctx.cluster.apiUrl(0);
      const experiment = `cluster-${name}-${Date.now()}`;
      const sub = await submitJob(api1, { experiment_name: experiment, dataset: { name: ctx.state.longDataset }, target: 'label', algorithm: 'random_forest', params: ctx.state.longParams });
      const id = json(sub)?.job_id as string | undefined;
      if (sub.status !== 202 || id === undefined) {
        check(result, 'submit', '202', summarize(sub), false);
        return result;
      }
      const fitting = await poll(async () => {
        const s = await jobStatus(api1, id);
        if (s !== undefined && TERMINAL.has(s.status)) return s;
        return s?.status === 'running' && s.progress?.stage === 'fitting' && s.progress.percent >= 15 ? s : undefined;
      }, 120_000, 200);
      if (fitting === undefined || fitting.status !== 'running') {
        check(result, 'job reaches mid-fit', 'running, stage fitting, >= 15 %', fitting === undefined ? 'not within 120 s' : `already ${fitting.status}`, false);
        return result;
      }
      const holder = await ctx.cluster.jobWorker(id);
      if (holder.process === undefined || !holder.process.name.startsWith('worker')) {
        check(result, 'job held by a worker process', 'worker1 or worker2', `worker_id ${holder.workerId}`, false);
        return result;
      }
      const victim = holder.process;
      const killedAt = Date.now();
      ctx.log(`${name}: ${signal} ${victim.name} (pid ${victim.pid}) at ${Math.round(fitting.progress.percent)} % of job ${id}`);
      if (signal === 'SIGKILL') {
        victim.signal('SIGKILL');
      } else {
        const exit = await victim.stop('SIGTERM', 30_000);
        check(result, 'worker exits on SIGTERM', 'exit code 0 within 30 s', exit === undefined ? 'was not running' : `${describeExit(exit)} after ${since(killedAt)} ms`, exit?.code === 0);
      }
      // Retried on another worker: the row is claimed by a different worker id.
      const retried = await poll(async () => {
        const w = await ctx.cluster.jobWorker(id).catch(() => undefined);
        return w?.workerId != null && w.workerId !== holder.workerId ? w : undefined;
      }, 150_000, 500);
      check(result, 'retried on the other worker', 'claimed by another worker within 150 s', retried === undefined ? `not re-claimed within 150 s` : `${retried.process?.name ?? retried.workerId} after ${since(killedAt)} ms`, retried !== undefined);
      result.recoveryMs = retried === undefined ? null : since(killedAt);
      const end = await waitJob(api1, id, 240_000);
      check(result, 'job succeeds', 'succeeded', `${end?.status ?? 'unknown'} after ${since(killedAt)} ms from the ${signal}${end?.error ? `: ${shorten(String(end.error), 160)}` : ''}`, end?.status === 'succeeded');
      const runs = await runsOf(api1, experiment);
      const statuses = runs.map((r) => r.status);
      check(
        result,
        'no tracking run left RUNNING',
        'killed attempt FAILED/KILLED (or resumed), final run FINISHED',
        statuses.length === 0 ? 'no runs' : statuses.join(', '),
        statuses.length > 0 && !statuses.includes('RUNNING') && statuses.includes('FINISHED'),
      );
      if (!victim.running) victim.start();
      return result;
    },
  };
}

const promotion: Scenario = {
  name: 'promotion',
  title: 'promotion through API 2 served by API 1 within seconds',
  async run(ctx) {
    const result = newResult();
    const [api1, api2] = ctx.cluster.apiUrls as [string, string];
    const sub = await submitJob(api2, { experiment_name: 'cluster-promotion', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree', register_as: MODEL });
    const id = json(sub)?.job_id as string | undefined;
    const end = id === undefined ? undefined : await waitJob(api2, id, 90_000);
    const version = end?.model?.version as number | undefined;
    if (version === undefined) {
      check(result, 'new version trained', 'a registered version', `${summarize(sub)} / ${JSON.stringify(end)?.slice(0, 200)}`, false);
      return result;
    }
    const load = new Load({ targets: [api1], path: '/predict', headers: AUTH, body: randomRow, rate: Math.min(50, ctx.rate), timeoutMs: 5000 });
    load.start();
    await sleep(1000);
    const t0 = Date.now();
    const tr = await request(`${api2}/models/transition`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ name: MODEL, version, stage: 'Production', archive_existing_versions: true }),
      timeoutMs: 30_000,
    });
    check(result, 'transition through API 2', '200', summarize(tr), tr.status === 200);
    const seen = await poll(async () => {
      const r = await request(`${api1}/predict`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: randomRow(), timeoutMs: 5000 });
      return String(json(r)?.model_version) === String(version) ? Date.now() - t0 : undefined;
    }, 30_000, 50);
    check(result, 'API 1 serves the new version', 'within 5 s', seen === undefined ? 'not within 30 s' : `${seen} ms`, seen !== undefined && seen <= 5000);
    result.recoveryMs = seen ?? null;
    await sleep(1000);
    result.load = await load.stop();
    loadCheck(result, 'load on API 1 during the promotion', result.load, 1000);
    return result;
  },
};

const sharedState: Scenario = {
  name: 'shared',
  title: 'prediction cache and rate limits shared through Redis',
  async run(ctx) {
    const result = newResult();
    const [api1, api2] = ctx.cluster.apiUrls as [string, string];
    const row = randomRow();
    const post = (base: string): Promise<HttpResult> => request(`${base}/predict`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: row, timeoutMs: 5000 });
    const a = await post(api1);
    await sleep(300);
    const b = await post(api2);
    check(result, 'cache: row answered by API 1 is cached for API 2', 'API 2 first answer cached: true', `API 1 cached=${json(a)?.cached}, API 2 cached=${json(b)?.cached} (${b.status})`, json(a)?.cached === false && json(b)?.cached === true);
    const info = (base: string): Promise<HttpResult> => request(`${base}/info`, { headers: AUTH, timeoutMs: 5000 });
    const r1 = await info(api1);
    const r2 = await info(api2);
    const rem1 = Number(r1.headers['x-ratelimit-remaining']);
    const rem2 = Number(r2.headers['x-ratelimit-remaining']);
    check(
      result,
      'rate limit: one budget across APIs',
      'x-ratelimit-remaining on API 2 = API 1 - 1',
      `API 1 ${String(r1.headers['x-ratelimit-remaining'] ?? 'none')}, API 2 ${String(r2.headers['x-ratelimit-remaining'] ?? 'none')}`,
      Number.isFinite(rem1) && rem2 === rem1 - 1,
    );
    return result;
  },
};

/**
 * Load + readiness probes around a backing-service outage. `during` runs after the service
 * stopped (writes, job submissions...); `after` after it is back.
 */
async function outage(
  ctx: Ctx,
  result: ScenarioResult,
  service: ManagedProcess,
  stopService: () => Promise<void>,
  startService: () => Promise<void>,
  during: (stoppedAt: number) => Promise<void>,
  after: (restoredAt: number) => Promise<void>,
  readyCheck: (probes: readonly Probe[]) => void,
): Promise<void> {
  const { cluster } = ctx;
  const t0 = Date.now();
  const load = new Load({ targets: cluster.apiUrls, path: '/predict', headers: AUTH, body: randomRow, rate: ctx.rate, timeoutMs: 5000 });
  const prober = new Prober(cluster.apiUrls, 500, 5000);
  load.start();
  prober.start();
  await sleep(5000);
  const stoppedAt = Date.now();
  ctx.log(`${service.name} down`);
  await stopService();
  const duringWork = during(stoppedAt);
  await sleep(Math.max(0, stoppedAt + ctx.outageMs - Date.now()));
  await duringWork;
  const restoredAt = Date.now();
  ctx.log(`${service.name} back after ${restoredAt - stoppedAt} ms`);
  await startService();
  await after(restoredAt);
  await sleep(Math.max(0, restoredAt + 10_000 - Date.now()));
  await prober.stop();
  result.load = await load.stop();
  const before = summarizeSamples(result.load.samples, t0, stoppedAt);
  const down = summarizeSamples(result.load.samples, stoppedAt, restoredAt);
  const afterStats = summarizeSamples(result.load.samples, restoredAt);
  result.notes.push(
    `predictions before: ${before.sent} sent, ${before.sent - before.ok} failed; during: ${down.sent} sent, ${down.sent - down.ok} failed (${fmtFailures(down.failures)}), p99 ${Math.round(down.p99)} ms; after: ${afterStats.sent} sent, ${afterStats.sent - afterStats.ok} failed (${fmtFailures(afterStats.failures)})`,
  );
  loadCheck(result, 'predictions', result.load, 1000);
  const duringProbes = prober.probes.filter((p) => p.at >= stoppedAt && p.at < restoredAt);
  readyCheck(duringProbes);
  const readyAgain = cluster.apiUrls.map((u) => prober.probes.filter((p) => p.target === u && p.at >= restoredAt && p.status === 200)[0]?.at);
  const recovered = readyAgain.every((t): t is number => t !== undefined) ? Math.max(...readyAgain.map((t) => t - restoredAt)) : undefined;
  check(result, '/ready back to 200 on both APIs', 'within 10 s of the restore', recovered === undefined ? `not within the run (${probeSummary(prober.probes.filter((p) => p.at >= restoredAt))})` : `${recovered} ms`, recovered !== undefined && recovered <= 10_000);
  const lastFail = lastFailureAfter(result.load, restoredAt);
  result.recoveryMs = recovered === undefined ? null : Math.max(recovered, lastFail);
  const exits = unexpectedExits(ctx, t0);
  check(result, 'API and worker processes stay up', 'no exit', exits.length === 0 ? 'none exited' : exits.join('; '), exits.length === 0);
}

function readinessReports(result: ScenarioResult, checkName: string, probes: readonly Probe[], timeoutMs: number): void {
  const answered = probes.filter((p) => p.status > 0);
  const hung = probes.filter((p) => p.ms > timeoutMs || p.status === 0);
  const reported = answered.some((p) => p.status === 503 && p.body.includes(checkName));
  check(result, `/ready reports ${checkName} down`, `503 naming '${checkName}', every probe answered within ${timeoutMs} ms`, probeSummary(probes) + (hung.length > 0 ? `; ${hung.length} over ${timeoutMs} ms or unanswered` : ''), reported && hung.length === 0);
}

const redisDown: Scenario = {
  name: 'redis-down',
  title: 'Redis down (data lost) under load',
  async run(ctx) {
    const result = newResult();
    const { cluster } = ctx;
    const api1 = cluster.apiUrl(0);
    // Two long jobs to occupy both workers and a third left queued: its queue entry dies with Redis.
    const jobs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sub = await submitJob(api1, { experiment_name: 'cluster-redis-down', dataset: { name: ctx.state.longDataset }, target: 'label', algorithm: 'random_forest', params: { ...ctx.state.longParams, n_estimators: 60 } });
      const id = json(sub)?.job_id as string | undefined;
      if (id !== undefined) jobs.push(id);
    }
    const queuedBefore = await poll(async () => {
      const s = await Promise.all(jobs.map((id) => jobStatus(api1, id)));
      const statuses = s.map((x) => x?.status);
      return statuses.filter((x) => x === 'running').length >= 2 ? statuses : undefined;
    }, 60_000, 250);
    result.notes.push(`jobs before the outage: ${queuedBefore?.join(', ') ?? 'two never ran at once'}`);
    let duringSubmit: HttpResult | undefined;
    let afterSubmitMs: number | undefined;
    let afterJob: string | undefined;
    await outage(
      ctx,
      result,
      cluster.redis,
      async () => {
        await cluster.redis.stop('SIGTERM', 5000);
      },
      () => cluster.startRedis(),
      async () => {
        await sleep(2000);
        duringSubmit = await submitJob(api1, { experiment_name: 'cluster-redis-down', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' }, 15_000);
      },
      async (restoredAt) => {
        const ok = await poll(async () => {
          const r = await submitJob(api1, { experiment_name: 'cluster-redis-down', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' }, 10_000);
          if (r.status === 202) {
            afterJob = json(r)?.job_id as string;
            return Date.now() - restoredAt;
          }
          return undefined;
        }, 20_000, 1000);
        afterSubmitMs = ok;
      },
      (probes) => readinessReports(result, 'redis', probes, 3000),
    );
    const ds = duringSubmit;
    check(
      result,
      'job submission during the outage',
      '503 with a clear error within 5 s',
      ds === undefined ? 'not sent' : summarize(ds),
      ds !== undefined && ds.status === 503 && ds.ms <= 5000 && /redis|queue|unavailable/i.test(ds.body),
    );
    check(result, 'job submission after the restore', '202 within 10 s', afterSubmitMs === undefined ? 'no 202 within 20 s' : `${afterSubmitMs} ms`, afterSubmitMs !== undefined && afterSubmitMs <= 10_000);
    if (ds !== undefined && ds.status === 202) {
      const id = json(ds)?.job_id as string | undefined;
      if (id !== undefined) jobs.push(id);
    }
    if (afterJob !== undefined) jobs.push(afterJob);
    // Nothing accepted is lost: every accepted job ends, the one whose queue entry died included.
    const ends = await Promise.all(jobs.map((id) => waitJob(api1, id, 150_000)));
    const summary = ends.map((e, i) => `${jobs[i]!.slice(0, 8)} ${e?.status ?? 'unknown'}`).join(', ');
    check(result, 'every accepted job finishes (lost queue entries re-enqueued)', 'all succeeded within 150 s', summary, ends.every((e) => e?.status === 'succeeded'));
    const runs = await runsOf(api1, 'cluster-redis-down');
    check(result, 'no tracking run left RUNNING', 'none RUNNING', runs.map((r) => r.status).join(', ') || 'no runs', !runs.some((r) => r.status === 'RUNNING'));
    return result;
  },
};

const postgresDown: Scenario = {
  name: 'postgres-down',
  title: 'PostgreSQL down under load; an API started during the outage',
  async run(ctx) {
    const result = newResult();
    const { cluster } = ctx;
    const api1 = cluster.apiUrl(0);
    let duringWrite: HttpResult | undefined;
    let duringMetrics: HttpResult | undefined;
    let afterWriteMs: number | undefined;
    const accepted: string[] = [];
    const port3 = await freePort();
    const api3 = cluster.apiProcess('api3', port3);
    const createModel = async (name: string, timeoutMs: number): Promise<HttpResult> => {
      const r = await request(`${api1}/models`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ name }), timeoutMs });
      if (isOk(r)) accepted.push(name);
      return r;
    };
    let api3AliveAtRestore = false;
    try {
      await outage(
        ctx,
        result,
        cluster.pg,
        async () => {
          await cluster.pg.stop('SIGINT', 10_000);
        },
        () => cluster.startPostgres(),
        async () => {
          await sleep(1000);
          api3.start();
          await sleep(1000);
          duringWrite = await createModel(`cluster-pg-${Date.now()}`, 15_000);
          duringMetrics = await request(`${api1}/metrics`, { timeoutMs: 10_000 });
        },
        async (restoredAt) => {
          api3AliveAtRestore = api3.running;
          afterWriteMs = await poll(async () => (isOk(await createModel(`cluster-pg-after-${Date.now()}`, 10_000)) ? Date.now() - restoredAt : undefined), 20_000, 1000);
        },
        (probes) => readinessReports(result, 'store', probes, 3000),
      );
      const dw = duringWrite;
      check(result, 'write during the outage', '503 with a clear error within 5 s', dw === undefined ? 'not sent' : summarize(dw), dw !== undefined && dw.status === 503 && dw.ms <= 5000);
      const dm = duringMetrics;
      check(result, '/metrics during the outage', '200 within 3 s (Prometheus keeps scraping)', dm === undefined ? 'not sent' : summarize(dm, 80), dm !== undefined && dm.status === 200 && dm.ms <= 3000);
      check(result, 'write after the restore', '2xx within 10 s', afterWriteMs === undefined ? 'no 2xx within 20 s' : `${afterWriteMs} ms`, afterWriteMs !== undefined && afterWriteMs <= 10_000);
      const api3Exit = api3.exits[0];
      check(
        result,
        'API started during the outage waits and retries',
        'still running when PostgreSQL returns, then ready',
        api3AliveAtRestore ? 'running at the restore' : `exited during the outage: ${api3Exit === undefined ? '?' : describeExit(api3Exit)} (${api3.crashSummary() ?? api3.tail(2)})`,
        api3AliveAtRestore,
      );
      if (api3.running) {
        const ready = await poll(async () => ((await request(`http://127.0.0.1:${port3}/ready`, { timeoutMs: 3000 })).status === 200 ? true : undefined), 30_000, 500);
        check(result, 'late API ready after the restore', '/ready 200 within 30 s', ready === undefined ? 'not ready within 30 s' : 'ready', ready !== undefined);
      }
      const lost = [];
      for (const name of accepted) {
        const r = await request(`${api1}/models/${encodeURIComponent(name)}`, { headers: AUTH, timeoutMs: 5000 });
        if (r.status !== 200) lost.push(`${name}: ${r.status}`);
      }
      check(result, 'accepted writes kept', 'every 2xx write readable afterwards', lost.length === 0 ? `${accepted.length} of ${accepted.length}` : lost.join(', '), lost.length === 0);
      // The workers still take jobs after the outage.
      const sub = await submitJob(api1, { experiment_name: 'cluster-pg-down', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' });
      const id = json(sub)?.job_id as string | undefined;
      const end = id === undefined ? undefined : await waitJob(api1, id, 60_000);
      check(result, 'a job after the outage runs', 'succeeded within 60 s', id === undefined ? summarize(sub) : (end?.status ?? 'unknown'), end?.status === 'succeeded');
    } finally {
      await api3.stop('SIGTERM', 12_000);
    }
    return result;
  },
};

const s3Down: Scenario = {
  name: 's3-down',
  title: 'S3 down under load: serving continues, uploads 503',
  async run(ctx) {
    const result = newResult();
    const { cluster } = ctx;
    const api1 = cluster.apiUrl(0);
    const onnx = ctx.state.onnx;
    if (onnx === undefined) {
      check(result, 'model bytes for the upload', 'fetched at setup', 'missing', false);
      return result;
    }
    let duringUpload: HttpResult | undefined;
    let duringDataset: HttpResult | undefined;
    let afterUploadMs: number | undefined;
    await outage(
      ctx,
      result,
      cluster.s3,
      async () => {
        await cluster.s3.stop('SIGKILL', 5000);
      },
      () => cluster.startS3(),
      async () => {
        await sleep(1000);
        duringUpload = await uploadVersion(api1, onnx, 30_000);
        duringDataset = await request(`${api1}/datasets/cluster-s3-down`, { method: 'POST', headers: { ...AUTH, 'content-type': 'text/csv' }, body: 'a,b\n1,2\n3,4\n', timeoutMs: 30_000 });
      },
      async (restoredAt) => {
        afterUploadMs = await poll(async () => (isOk(await uploadVersion(api1, onnx, 20_000)) ? Date.now() - restoredAt : undefined), 30_000, 1000);
      },
      (probes) => result.notes.push(`/ready during the S3 outage: ${probeSummary(probes)}`),
    );
    for (const [what, r] of [
      ['model upload', duringUpload],
      ['dataset upload', duringDataset],
    ] as const) {
      check(result, `${what} during the outage`, '503 within 10 s', r === undefined ? 'not sent' : summarize(r), r !== undefined && r.status === 503 && r.ms <= 10_000);
    }
    check(result, 'model upload after the restore', '201 within 10 s', afterUploadMs === undefined ? 'no 2xx within 30 s' : `${afterUploadMs} ms`, afterUploadMs !== undefined && afterUploadMs <= 10_000);
    // Nothing half-made: every version listed has its artifact.
    const model = json(await request(`${api1}/models/${MODEL}`, { headers: AUTH, timeoutMs: 10_000 }));
    const versions = ((model?.versions ?? model?.latest_versions ?? []) as any[]).map((v) => v.version as number | string);
    const missing: string[] = [];
    for (const v of versions) {
      const r = await request(`${api1}/models/${MODEL}/versions/${v}/artifact`, { headers: AUTH, timeoutMs: 20_000 });
      if (r.status !== 200) missing.push(`v${v}: ${r.status}`);
    }
    check(result, 'no version without its artifact', `all ${versions.length} listed versions downloadable`, missing.length === 0 ? `${versions.length} ok` : missing.join(', '), missing.length === 0);
    return result;
  },
};

const apiSigterm: Scenario = {
  name: 'sigterm',
  title: 'SIGTERM of API 1 under load behind a readiness-gated balancer',
  async run(ctx) {
    const result = newResult();
    const { cluster } = ctx;
    const api = cluster.apis[0]!;
    const url = cluster.apiUrl(0);
    // Probes every 200 ms; the balancer drops a backend at its first failed probe (kinder than
    // Kubernetes, which waits periodSeconds x failureThreshold and then for the endpoint update).
    const prober = new Prober(cluster.apiUrls, 200, 1000);
    const load = new Load({ targets: cluster.apiUrls, path: '/predict', headers: AUTH, body: randomRow, rate: ctx.rate, timeoutMs: 5000, balancer: prober });
    prober.start();
    await sleep(600);
    load.start();
    await sleep(5000);
    const t0 = Date.now();
    const exited = api.waitExit();
    api.signal('SIGTERM');
    const exit = await Promise.race([exited, sleep(20_000).then(() => undefined)]);
    await sleep(3000);
    await prober.stop();
    result.load = await load.stop();
    check(result, 'API exits cleanly', 'exit code 0 within SHUTDOWN_TIMEOUT (10 s)', exit === undefined ? 'still running after 20 s' : `${describeExit(exit)} after ${exit.at - t0} ms`, exit?.code === 0 && exit.at - t0 <= 10_000);
    const mine = prober.probes.filter((p) => p.target === url && p.at >= t0);
    const firstNotReady = mine.find((p) => p.status !== 200);
    const firstRefused = mine.find((p) => p.status === 0);
    check(
      result,
      'readiness goes false before the listener closes',
      'a 503 from /ready first, then connection refused',
      `first non-200 probe: ${firstNotReady === undefined ? 'none' : `${firstNotReady.status || firstNotReady.error} at +${firstNotReady.at - t0} ms`}; first refused: ${firstRefused === undefined ? 'none' : `+${firstRefused.at - t0} ms`}`,
      firstNotReady !== undefined && firstNotReady.status === 503 && (firstRefused === undefined || firstRefused.at > firstNotReady.at),
    );
    const stopping = summarizeSamples(result.load.samples, t0);
    check(result, 'zero failed requests at the load generator', `0 of ${result.load.sent}`, `${result.load.sent - result.load.ok} failed (${fmtFailures(result.load.failures)}); ${stopping.sent - stopping.ok} of them after the SIGTERM`, result.load.ok === result.load.sent);
    result.recoveryMs = exit === undefined ? null : exit.at - t0;
    return result;
  },
};

export const SCENARIOS: readonly Scenario[] = [jobsAcrossApis, workerDeath('SIGKILL'), workerDeath('SIGTERM'), promotion, sharedState, redisDown, postgresDown, s3Down, apiSigterm];
