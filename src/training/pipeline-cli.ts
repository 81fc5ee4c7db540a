/**
 * CLI commands around training: `train`, `predict`, `datasets list|import`. Each works against a
 * running server (`--url`, with `--api-key`) or, where that makes sense, directly on the local
 * store and artifact store named by the environment (the same ones `serve` uses).
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from 'pino';
import { openBackends } from '../backends.ts';
import type { Config } from '../config.ts';
import type { DatasetVersion } from '../datasets/dataset.service.ts';
import { onnxRuntime } from '../onnx/runtime.ts';
import { createLogger } from '../platform/logging.ts';
import { createDataServices } from '../services.ts';
import { jobThreads } from './job-threads.ts';
import type { PipelineDeps } from './pipeline.ts';
import { parseTrainRequest, validateTrainRequest } from './train-request.ts';

/** What the commands need from `main.ts`. */
export interface CliContext {
  /** Configuration from the environment with `--data-dir` on top. */
  configFrom(opts: { dataDir?: string }): Config;
}

interface RemoteOptions {
  url?: string;
  apiKey?: string;
  dataDir?: string;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const POLL_MS = 500;
/** Rows per `/predict/batch` request (the server's default MAX_BATCH_SIZE). */
const PREDICT_CHUNK = 1000;

/** `k=v`: the value as JSON when it parses (numbers, booleans, null), else the text. */
export function parseParam(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got '${value}'`);
  const key = value.slice(0, eq).trim();
  const raw = value.slice(eq + 1).trim();
  let parsed: unknown = raw;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // Not JSON: keep the text (e.g. criterion=entropy).
  }
  return { ...previous, [key]: parsed };
}

/** `NAME` or `NAME:VERSION`. */
export function parseDatasetRef(value: string): { name: string; version?: number } {
  const m = /^(.+):(\d+)$/.exec(value);
  return m === null ? { name: value } : { name: m[1]!, version: Number(m[2]) };
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

/** The API key: `--api-key`, else `MODELPLANE_API_KEY` / `API_KEY`, else `<data dir>/admin.key`. */
function apiKeyOf(opts: RemoteOptions, config: Config | undefined): string | undefined {
  const key = opts.apiKey ?? config?.cliApiKey;
  if (key !== undefined && key !== '') return key;
  const file = config === undefined ? undefined : path.join(config.dataDir, 'admin.key');
  return file !== undefined && existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** Why a fetch failed: the network error's code and message, not fetch's "fetch failed". */
export function unreachableCause(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause !== undefined && cause !== null) {
    const code = typeof cause.code === 'string' ? cause.code : undefined;
    const message = typeof cause.message === 'string' ? cause.message : undefined;
    if (code !== undefined && message !== undefined && !message.includes(code)) return `${code} ${message}`;
    if (message !== undefined) return message;
    if (code !== undefined) return code;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A small client for the server's native API; errors carry the server's `details`. */
class Remote {
  constructor(
    private readonly base: string,
    private readonly key: string | undefined,
  ) {}

  async call<T>(method: string, url: string, body?: unknown, init: { contentType?: string; raw?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.key !== undefined) headers['x-api-key'] = this.key;
    let payload: RequestInit['body'];
    if (body !== undefined) {
      headers['content-type'] = init.contentType ?? 'application/json';
      payload = init.raw === true ? (body as RequestInit['body']) : JSON.stringify(body);
    }
    const target = new URL(url, this.base);
    let res: Response;
    try {
      res = await fetch(target, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        // Needed by fetch to send a streamed request body.
        ...(init.raw === true ? { duplex: 'half' } : {}),
      });
    } catch (err) {
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, ...) is its cause.
      throw new Error(`cannot reach the server at ${target.origin} (${method} ${target.href}): ${unreachableCause(err)}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const details = (json as { details?: string; message?: string } | undefined)?.details ?? (json as { message?: string } | undefined)?.message ?? text;
      throw new Error(`${method} ${url}: ${res.status} ${details}`);
    }
    return json as T;
  }
}

function remoteFor(opts: RemoteOptions, ctx: CliContext): Remote {
  let config: Config | undefined;
  try {
    config = ctx.configFrom({ ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }) });
  } catch {
    config = undefined;
  }
  let base = opts.url;
  if (base === undefined) {
    const host = config === undefined || config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    base = `http://${host}:${config?.port ?? 8000}`;
  }
  return new Remote(base.endsWith('/') ? base : `${base}/`, apiKeyOf(opts, config));
}

/**
 * A progress bar on stderr (drawn only on a terminal) with log lines printed above it. cli-progress
 * is loaded here, not with the CLI: `modelplane serve` never draws one.
 */
async function progressBar(): Promise<{ update(percent: number, stage: string, message?: string): void; log(line: string): void; stop(): void }> {
  const { default: cliProgress } = await import('cli-progress');
  const tty = process.stderr.isTTY;
  const multi = new cliProgress.MultiBar(
    { format: ' {bar} {percentage}% | {stage} {message}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bar = tty ? multi.create(100, 0, { stage: 'queued', message: '' }) : undefined;
  return {
    update(percent, stage, message) {
      bar?.update(Math.round(percent), { stage, message: (message ?? '').slice(0, 60) });
    },
    log(line) {
      if (tty) multi.log(`${line}\n`);
      else process.stderr.write(`${line}\n`);
    },
    stop() {
      multi.stop();
    },
  };
}

interface TrainCliOptions extends RemoteOptions {
  dataset: string;
  target: string;
  algorithm: string;
  param: Record<string, unknown>;
  features?: string;
  task?: string;
  experiment?: string;
  runName?: string;
  testSize?: number;
  seed?: number;
  registerAs?: string;
  promoteTo?: string;
  gateMetric?: string;
  gateMin?: number;
  gateMax?: number;
}

function trainRequestOf(o: TrainCliOptions): Record<string, unknown> {
  const gate =
    o.gateMetric === undefined
      ? undefined
      : { metric: o.gateMetric, ...(o.gateMin === undefined ? {} : { min: o.gateMin }), ...(o.gateMax === undefined ? {} : { max: o.gateMax }) };
  const validation = { ...(o.testSize === undefined ? {} : { test_size: o.testSize }), ...(o.seed === undefined ? {} : { seed: o.seed }) };
  return {
    dataset: parseDatasetRef(o.dataset),
    target: o.target,
    algorithm: o.algorithm,
    ...(Object.keys(o.param).length === 0 ? {} : { params: o.param }),
    ...(o.features === undefined ? {} : { features: o.features.split(',').map((f) => f.trim()).filter((f) => f !== '') }),
    ...(o.task === undefined ? {} : { task: o.task }),
    ...(o.experiment === undefined ? {} : { experiment_name: o.experiment }),
    ...(o.runName === undefined ? {} : { run_name: o.runName }),
    ...(Object.keys(validation).length === 0 ? {} : { validation }),
    ...(o.registerAs === undefined ? {} : { register_as: o.registerAs }),
    ...(o.promoteTo === undefined ? {} : { promote_to: o.promoteTo }),
    ...(gate === undefined ? {} : { promotion_gate: gate }),
  };
}

interface JobStatusBody {
  job_id: string;
  status: string;
  progress?: { percent?: number; stage?: string; message?: string | null };
  error?: string | null;
}

async function trainRemote(o: TrainCliOptions, ctx: CliContext): Promise<void> {
  const remote = remoteFor(o, ctx);
  const submitted = await remote.call<{ job_id: string }>('POST', 'train', trainRequestOf(o));
  const bar = await progressBar();
  bar.log(`submitted job ${submitted.job_id}`);
  let cancelling = false;
  const onSignal = (): void => {
    if (cancelling) return;
    cancelling = true;
    bar.log('cancelling ...');
    remote.call('POST', `train/${submitted.job_id}/cancel`).catch((err: unknown) => bar.log(`cancel failed: ${err instanceof Error ? err.message : String(err)}`));
  };
  process.on('SIGINT', onSignal);
  let status: JobStatusBody;
  try {
    for (;;) {
      status = await remote.call<JobStatusBody>('GET', `train/status/${submitted.job_id}`);
      bar.update(status.progress?.percent ?? 0, status.progress?.stage ?? status.status, status.progress?.message ?? '');
      if (TERMINAL.has(status.status)) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    process.off('SIGINT', onSignal);
    bar.stop();
  }
  process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  if (status.status !== 'succeeded') process.exitCode = 1;
}

/** Runs `fn` over the local store and artifact store (the ones `serve` uses), closing them after. */
async function withLocalServices<T>(config: Config, log: Logger, fn: (deps: PipelineDeps) => Promise<T>): Promise<T> {
  const backends = await openBackends(config, log, { parts: 'data' });
  try {
    return await fn({ services: createDataServices(backends, config, log), onnx: onnxRuntime, log, maxModelBytes: config.trainingMaxModelBytes });
  } finally {
    await backends.close();
  }
}

async function trainLocal(o: TrainCliOptions, ctx: CliContext): Promise<void> {
  const config = ctx.configFrom({ ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }) });
  const log = createLogger({ logLevel: 'warn' }, { destination: process.stderr });
  await withLocalServices(config, log, async (deps) => {
    const controller = new AbortController();
    const onSignal = (): void => controller.abort(new Error('cancelled by the user'));
    process.on('SIGINT', onSignal);
    const bar = await progressBar();
    try {
      const job = await validateTrainRequest(parseTrainRequest(trainRequestOf(o)), deps.services.datasets, 'cli');
      // The trainers load with the first local training job, not with every CLI command (serve).
      const { localJobContext, runTrainingJob } = await import('./pipeline.ts');
      const result = await runTrainingJob(
        job,
        localJobContext({
          signal: controller.signal,
          threads: jobThreads({ configured: config.trainingThreads, serving: false, concurrentJobs: 1 }),
          onProgress: (p, stage, message) => bar.update(p, stage, message),
          onLog: (line) => bar.log(line),
        }),
        deps,
      );
      bar.stop();
      // The same snake_case names as the server's job status (`train --remote`).
      const out = { run_id: result.runId, experiment_name: result.experimentName, model: result.model, metrics: result.metrics };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } finally {
      bar.stop();
      process.off('SIGINT', onSignal);
    }
  });
}

/** Rows of a CSV or JSON file as `/predict/batch` records. */
async function readRows(file: string): Promise<unknown[]> {
  if (file.toLowerCase().endsWith('.json')) {
    const data = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (Array.isArray(data)) return data;
    const obj = data as Record<string, unknown>;
    for (const key of ['records', 'instances', 'features_list', 'rows']) {
      if (Array.isArray(obj[key])) return obj[key] as unknown[];
    }
    return [data];
  }
  const { ingestCsv } = await import('../datasets/csv-ingest.ts');
  const { table } = await ingestCsv(createReadStream(file));
  const rows: Record<string, number | string | null>[] = [];
  for (let i = 0; i < table.rowCount; i++) {
    const row: Record<string, number | string | null> = {};
    for (const c of table.columns) {
      if (c.type === 'categorical') row[c.name] = c.values[i] ?? null;
      else {
        const v = c.values[i]!;
        row[c.name] = Number.isNaN(v) ? null : v;
      }
    }
    rows.push(row);
  }
  return rows;
}

function summaryLine(v: DatasetVersion): string {
  return `${v.name} version ${v.version}: ${v.rowCount} rows, ${v.columnCount} columns, sha256 ${v.sha256}`;
}

/** Adds `train`, `predict` and `datasets` to the program. */
export function addTrainingCommands(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .description('train a model: in this process, or on a server with --url (live progress bar on stderr, result JSON on stdout)')
    .requiredOption('--dataset <name[:version]>', 'dataset name, optionally with a version (built-ins: iris, synthetic_classification, synthetic_regression)')
    .requiredOption('--target <column>', 'target column')
    .requiredOption('--algorithm <name>', 'logistic_regression, linear_regression, decision_tree, random_forest or gradient_boosting')
    .option('--param <key=value>', 'hyper-parameter (repeatable); values parse as JSON when they can', parseParam, {})
    .option('--features <a,b,...>', 'feature columns (default: every column but the target)')
    .option('--task <task>', 'classification or regression (default: inferred from the target)')
    .option('--experiment <name>', 'experiment (default: the dataset name)')
    .option('--run-name <name>', 'run name')
    .option('--test-size <fraction>', 'hold-out share (default 0.2)', parseNumber)
    .option('--seed <n>', 'split and trainer seed (default 42)', parseNumber)
    .option('--register-as <model>', 'register the trained model under this name')
    .option('--promote-to <stage>', 'Staging or Production (needs --register-as)')
    .option('--gate-metric <metric>', 'promote only if this hold-out metric passes --gate-min / --gate-max')
    .option('--gate-min <value>', 'least value of the gate metric', parseNumber)
    .option('--gate-max <value>', 'largest value of the gate metric', parseNumber)
    .option('--url <url>', 'server to submit to (default: train in this process)')
    .option('--api-key <key>', 'API key for --url (default: MODELPLANE_API_KEY, API_KEY or <data dir>/admin.key)')
    .option('--data-dir <dir>', 'data directory (DATA_DIR)')
    .action(async (o: TrainCliOptions) => {
      if (o.url !== undefined) await trainRemote(o, ctx);
      else await trainLocal(o, ctx);
    });

  program
    .command('predict')
    .description('send the rows of a CSV or JSON file to /predict/batch and print the predictions as JSON')
    .requiredOption('--model <name>', 'registered model')
    .requiredOption('--file <path>', 'rows.csv (header row) or rows.json (array of rows, or {records: [...]})')
    .option('--stage <stage>', 'Production, Staging, ...')
    .option('--version <n>', 'model version')
    .option('--url <url>', 'server (default: http://API_HOST:API_PORT)')
    .option('--api-key <key>', 'API key (default: MODELPLANE_API_KEY, API_KEY or <data dir>/admin.key)')
    .option('--data-dir <dir>', 'data directory (DATA_DIR)')
    .action(async (o: RemoteOptions & { model: string; file: string; stage?: string; version?: string }) => {
      const remote = remoteFor(o, ctx);
      const rows = await readRows(o.file);
      const query = new URLSearchParams({ model: o.model });
      if (o.stage !== undefined) query.set('stage', o.stage);
      if (o.version !== undefined) query.set('version', o.version);
      const predictions: unknown[] = [];
      let last: Record<string, unknown> = {};
      for (let i = 0; i < rows.length; i += PREDICT_CHUNK) {
        last = await remote.call<Record<string, unknown>>('POST', `predict/batch?${query.toString()}`, { records: rows.slice(i, i + PREDICT_CHUNK) });
        predictions.push(...((last['predictions'] as unknown[] | undefined) ?? []));
      }
      process.stdout.write(
        `${JSON.stringify({ predictions, count: predictions.length, model_name: last['model_name'] ?? o.model, model_version: last['model_version'] ?? null }, null, 2)}\n`,
      );
    });

  const datasets = program.command('datasets').description('list and import datasets');
  datasets
    .command('list')
    .description('list datasets (stored and built-in)')
    .option('--url <url>', 'ask a server instead of the local store')
    .option('--api-key <key>', 'API key for --url')
    .option('--data-dir <dir>', 'data directory (DATA_DIR)')
    .option('--json', 'print JSON')
    .action(async (o: RemoteOptions & { json?: boolean }) => {
      let items: { name: string; builtin: boolean; versions: number; latest: number | null }[];
      if (o.url !== undefined) {
        const body = await remoteFor(o, ctx).call<{ datasets: { name: string; builtin: boolean; version_count: number; latest_version: number | null }[] }>(
          'GET',
          'datasets?limit=1000',
        );
        items = body.datasets.map((d) => ({ name: d.name, builtin: d.builtin, versions: d.version_count, latest: d.latest_version }));
      } else {
        const config = ctx.configFrom({ ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }) });
        items = await withLocalServices(config, createLogger({ logLevel: 'silent' }), async (deps) => {
          const page = await deps.services.datasets.listDatasets(0, 100_000);
          return page.items.map((d) => ({ name: d.name, builtin: d.builtin !== null, versions: d.versionCount, latest: d.latestVersion }));
        });
      }
      if (o.json === true) {
        process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        return;
      }
      for (const d of items) {
        const versions = d.latest === null ? 'not stored yet' : `${d.versions} version(s), latest ${d.latest}`;
        process.stdout.write(`${d.name.padEnd(32)} ${d.builtin ? 'built-in  ' : '          '}${versions}\n`);
      }
    });

  datasets
    .command('import <source>')
    .description('store a CSV (or JSON rows) file or http(s) URL as a new dataset version')
    .requiredOption('--name <name>', 'dataset name')
    .option('--delimiter <c>', 'field delimiter (default: sniffed)')
    .option('--url <url>', 'upload to a server instead of the local store')
    .option('--api-key <key>', 'API key for --url')
    .option('--data-dir <dir>', 'data directory (DATA_DIR)')
    .action(async (source: string, o: RemoteOptions & { name: string; delimiter?: string }) => {
      const isUrl = /^https?:\/\//i.test(source);
      const json = !isUrl && source.toLowerCase().endsWith('.json');
      const open = async (): Promise<Readable> => {
        if (!isUrl) return createReadStream(source);
        const res = await fetch(source);
        if (!res.ok || res.body === null) throw new Error(`GET ${source}: ${res.status} ${res.statusText}`);
        return Readable.fromWeb(res.body);
      };
      if (o.url !== undefined) {
        const remote = remoteFor(o, ctx);
        const query = o.delimiter === undefined ? '' : `?delimiter=${encodeURIComponent(o.delimiter)}`;
        const url = `datasets/${encodeURIComponent(o.name)}${query}`;
        const fromJson = (data: unknown): unknown => (Array.isArray(data) ? { rows: data } : data);
        const created = json
          ? await remote.call<{ version: number; rows: number; sha256: string }>('POST', url, fromJson(JSON.parse(await readFile(source, 'utf8'))))
          : await remote.call<{ version: number; rows: number; sha256: string }>('POST', url, await open(), { contentType: 'text/csv', raw: true });
        process.stdout.write(`${o.name} version ${created.version}: ${created.rows} rows, sha256 ${created.sha256}\n`);
        return;
      }
      const config = ctx.configFrom({ ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }) });
      await withLocalServices(config, createLogger({ logLevel: 'warn' }, { destination: process.stderr }), async (deps) => {
        const service = deps.services.datasets;
        const options = { actor: 'cli', source: 'import' as const, ...(o.delimiter === undefined ? {} : { delimiter: o.delimiter }) };
        let created: DatasetVersion;
        if (json) {
          const data = JSON.parse(await readFile(source, 'utf8')) as unknown;
          // Either an array of rows or the API's {rows: [...]} body.
          const rows = Array.isArray(data) ? data : (data as { rows?: unknown }).rows;
          created = await service.uploadRows(o.name, rows, options);
        } else {
          created = await service.uploadCsv(o.name, await open(), options);
        }
        process.stdout.write(`${summaryLine(created)}\n`);
      });
    });
}
