import path from 'node:path';
import { Kind, Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ONNX_MAX_BYTES } from './onnx/errors.ts';

/**
 * Environment -> validated, frozen configuration. `EnvSchema` is the one description of every
 * setting, keyed by the environment variable's name (the names of the systems modelplane replaces,
 * so existing deployments keep their environment files; see ARCHITECTURE.md "Configuration"):
 * its type, range, default and meaning. `loadConfig` converts each variable by its schema, applies
 * the defaults, checks the whole, and then derives the typed `Config` the code reads. Parsed once
 * at start; a bad value stops the process with one line naming the variable and the expected form.
 * Nothing else in the code reads `process.env`.
 */

export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export const Stage = Type.Union(STAGES.map((s) => Type.Literal(s)));
export type Stage = Static<typeof Stage>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LogLevel = Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)));

/** `x-url` is checked by `loadConfig`: a URL with one of these schemes. */
const url = (schemes: readonly string[], description: string) => Type.Optional(Type.String({ 'x-url': schemes, description }));
const bool = (fallback: boolean, description: string) => Type.Boolean({ default: fallback, description });
const int = (min: number, max: number, fallback: number | undefined, description: string) =>
  fallback === undefined ? Type.Optional(Type.Integer({ minimum: min, maximum: max, description })) : Type.Integer({ minimum: min, maximum: max, default: fallback, description });
const num = (min: number, max: number, fallback: number, description: string) => Type.Number({ minimum: min, maximum: max, default: fallback, description });
const oneOf = <T extends string>(choices: readonly T[], fallback: T | undefined, description: string) => {
  const schema = Type.Union(choices.map((c) => Type.Literal(c)), { description, ...(fallback === undefined ? {} : { default: fallback }) });
  return fallback === undefined ? Type.Optional(schema) : schema;
};
const text = (description: string, options: { minLength?: number; fallback?: string; secret?: boolean } = {}) => {
  const schema = Type.String({
    description,
    ...(options.minLength === undefined ? {} : { minLength: options.minLength }),
    ...(options.fallback === undefined ? {} : { default: options.fallback }),
    ...(options.secret === true ? { 'x-secret': true } : {}),
  });
  return options.fallback === undefined ? Type.Optional(schema) : schema;
};

/** Every setting, by environment variable name. The README's configuration table mirrors it. */
export const EnvSchema = Type.Object({
  API_HOST: text('listen address', { minLength: 1, fallback: '127.0.0.1' }),
  API_PORT: int(0, 65535, 8000, 'listen port'),
  API_KEY: text('an admin key', { minLength: 16, secret: true }),
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info', 'pino level'),
  LOG_FORMAT: oneOf(['auto', 'json', 'pretty'] as const, 'auto', 'log lines as JSON or human-readable; auto = readable on a terminal outside CI'),
  CI: text('set by CI systems: logs stay JSON under LOG_FORMAT=auto'),
  API_DEBUG: bool(false, 'log every failed request with its error and stack, 4xx included (never in responses)'),
  DATA_DIR: text('SQLite database, local artifacts, generated admin key', { minLength: 1, fallback: 'data' }),
  DATABASE_URL: url(['postgres:', 'postgresql:'], 'PostgreSQL instead of SQLite'),
  REDIS_URL: url(['redis:', 'rediss:'], 'shared prediction cache, rate limits and the BullMQ training queue'),
  REDIS_HOST: text('Redis host (with REDIS_PORT), when REDIS_URL is not set', { minLength: 1 }),
  REDIS_PORT: int(1, 65535, 6379, 'Redis port (with REDIS_HOST)'),
  REDIS_COMMAND_TIMEOUT_MS: int(1, 600_000, 500, 'longest wait of one command on the shared Redis connection (prediction cache, rate limits, /ready) before the feature falls back to its local stand-in'),
  REDIS_CONNECT_TIMEOUT_MS: int(100, 600_000, 5000, 'longest a connection attempt to Redis may take, and how long start-up waits for Redis before going on without it'),
  ARTIFACT_ROOT: text('a directory, or s3://bucket/prefix', { minLength: 1 }),
  S3_ENDPOINT_URL: url(['http:', 'https:'], 'S3-compatible endpoint (MinIO, ...)'),
  AWS_ENDPOINT_URL_S3: url(['http:', 'https:'], 'the AWS SDK\'s spelling of S3_ENDPOINT_URL'),
  AWS_ENDPOINT_URL: url(['http:', 'https:'], 'the AWS SDK\'s endpoint for every service'),
  S3_FORCE_PATH_STYLE: bool(false, 'path-style S3 addressing (MinIO-like servers)'),
  AWS_REGION: text('S3 region', { minLength: 1 }),
  AWS_DEFAULT_REGION: text('S3 region (older spelling)', { minLength: 1 }),
  MODEL_NAME: text('the registered model /predict serves by default', { minLength: 1 }),
  MODEL_STAGE: oneOf(STAGES, 'Production', 'the stage of MODEL_NAME served by default'),
  // 'none' first: matched case-insensitively, any spelling of it disables the fallback (the None stage is never a fallback).
  MODEL_FALLBACK_STAGE: oneOf(['none', ...STAGES] as const, 'Staging', 'the stage served when MODEL_STAGE has no version; none disables the fallback'),
  MODEL_PATH: text('serve one ONNX file, local path or s3://bucket/key', { minLength: 1 }),
  S3_BUCKET_NAME: text('with MODEL_KEY: the older spelling of MODEL_PATH=s3://bucket/key', { minLength: 1 }),
  MODEL_KEY: text('with S3_BUCKET_NAME: the older spelling of MODEL_PATH=s3://bucket/key', { minLength: 1 }),
  MODEL_CACHE_TTL: num(0, 86400 * 365, 60, 'seconds between checks of MODEL_PATH for a new file'),
  MODEL_DEVICE: oneOf(['cpu', 'cuda'] as const, 'cpu', 'cuda asks onnxruntime for the CUDA execution provider'),
  INFERENCE_THREAD: bool(false, 'run onnxruntime in a worker thread instead of on the event loop'),
  MAX_BATCH_SIZE: int(1, 100_000, 1000, 'rows per batch request'),
  PREDICTION_CACHE_SIZE: int(0, 2 ** 31, 10_000, 'entries of the in-memory prediction cache; 0 turns the cache off (in Redis too)'),
  PREDICTION_CACHE_TTL: int(0, 86400 * 365, undefined, 'seconds a cached prediction lives; default 0 in memory, 3600 in Redis'),
  PREDICTION_CACHE_ADMIT: oneOf(['repeat', 'always'] as const, undefined, 'which answers are stored; default repeat in memory, always in Redis'),
  BATCH_MAX_QUEUE_DELAY_US: int(0, 10_000_000, 0, 'how long a small batch may wait for more requests (microseconds)'),
  BATCH_MAX_QUEUE_ROWS: int(1, 2 ** 31, undefined, 'rows waiting per model before 503; default max(4096, 8 x batch size)'),
  REQUEST_TIMEOUT: num(0, 3600, 30, 'seconds to receive a request'),
  BODY_LIMIT_BYTES: int(1024, 2 ** 31, 16 * 1024 * 1024, 'request body limit (413 beyond)'),
  DATASET_MAX_BYTES: int(1024, 2 ** 40, 200 * 1024 * 1024, 'dataset upload limit (413 beyond)'),
  ENABLE_PROMETHEUS: bool(true, 'the /metrics endpoint'),
  PROMETHEUS_PORT: int(0, 65535, undefined, 'a separate metrics listener'),
  METRICS_REQUIRE_AUTH: bool(false, '/metrics needs a key (role read)'),
  DOCS_ENABLED: bool(true, '/docs, /redoc, /openapi.json'),
  CORS_ORIGINS: text('comma-separated allowed origins (* for any)'),
  // Off unless set: one server answers tens of thousands of predictions a second, and any fixed
  // per-key default throttled legitimate high-throughput clients (#12). Set it per deployment.
  RATE_LIMIT_PER_MINUTE: int(0, 2 ** 31, 0, 'requests per minute per API key; 0 (default) disables'),
  PREDICTION_LOG_SAMPLE_RATE: num(0, 1, 1, 'share of served predictions written to the prediction log'),
  PREDICTION_LOG_RETENTION_DAYS: num(0, 36_500, 30, 'days logged predictions are kept; 0 keeps them regardless of age'),
  PREDICTION_LOG_MAX_ROWS: int(0, 2 ** 31, 1_000_000, 'most rows kept in the prediction log (oldest deleted first); 0 = no limit'),
  PREDICTION_LOG_BUFFER_ROWS: int(1, 10_000_000, 50_000, 'logged rows held in memory while the store is slow or down (oldest dropped beyond)'),
  DRIFT_CHECK_INTERVAL: num(0, 7 * 86400, 300, 'seconds between periodic drift checks of models with a reference and logged traffic; 0 turns them off'),
  DRIFT_WINDOW: int(1, 1_000_000, 1000, 'latest logged rows a drift report compares with the reference unless ?window= or ?since= says otherwise'),
  DRIFT_MIN_WINDOW: int(1, 1_000_000, 100, 'fewest rows a drift report needs; below it the report says not enough data'),
  DRIFT_SHARE_THRESHOLD: num(0, 1, 0.5, 'share of drifted features at which the dataset counts as drifted'),
  SHUTDOWN_TIMEOUT: num(0, 3600, 10, 'seconds to finish in-flight requests on SIGTERM/SIGINT'),
  SHUTDOWN_DRAIN_SECONDS: num(0, 600, 2, 'seconds /ready answers 503 after SIGTERM while requests are still served, before the listener closes'),
  TRAINING_WORKERS: int(0, 64, 1, 'training jobs this process runs at once, each in a worker process of its own'),
  TRAINING_THREADS: int(
    1,
    256,
    undefined,
    'threads one training job builds trees on when its params leave n_jobs unset; default: the cores less one shared by the jobs of a serving process, all cores shared by the jobs of modelplane worker',
  ),
  TRAINING_MAX_MODEL_BYTES: int(
    1024,
    ONNX_MAX_BYTES,
    ONNX_MAX_BYTES,
    'largest ONNX model a training job may produce; a forest whose first trees show it would be larger stops there. Default and most: 2 GiB - 1, what onnxruntime reads',
  ),
  API_TITLE: text('title of the OpenAPI document (the seed service read it)', { minLength: 1, fallback: 'modelplane' }),
  API_VERSION: text('version in the OpenAPI document (the seed service read it); default the server version', { minLength: 1 }),
  MLFLOW_TRACKING_URI: url(['http:', 'https:'], 'the URL MLflow clients reach this server at (shown in / and /info)'),
  MODELPLANE_API_KEY: text('the key CLI commands send to a server (--api-key wins; else API_KEY)', { secret: true }),
});
export type Env = Static<typeof EnvSchema>;

/** The configuration the code reads, derived from the environment by `loadConfig`. */
export const ConfigSchema = Type.Object({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  apiKey: Type.Optional(Type.String({ minLength: 16 })),
  logLevel: LogLevel,
  /** Human-readable log lines (a terminal) rather than JSON. */
  logPretty: Type.Boolean(),
  dataDir: Type.String({ minLength: 1 }),
  databaseUrl: Type.Optional(Type.String()),
  redisUrl: Type.Optional(Type.String()),
  redis: Type.Object({
    /** Longest wait of one command on the shared connection (`commandTimeout`); the features fall back beyond it. */
    commandTimeoutMs: Type.Integer({ minimum: 1 }),
    /** Longest connection attempt, and the wait for Redis at start-up before going on without it. */
    connectTimeoutMs: Type.Integer({ minimum: 1 }),
  }),
  artifactRoot: Type.Optional(Type.String()),
  s3: Type.Object({
    endpoint: Type.Optional(Type.String()),
    forcePathStyle: Type.Boolean(),
    region: Type.Optional(Type.String()),
  }),
  model: Type.Object({
    name: Type.Optional(Type.String({ minLength: 1 })),
    stage: Stage,
    fallbackStage: Type.Optional(Stage),
    path: Type.Optional(Type.String({ minLength: 1 })),
    cacheTtlSeconds: Type.Number({ minimum: 0 }),
    device: Type.Union([Type.Literal('cpu'), Type.Literal('cuda')]),
    inferenceThread: Type.Boolean(),
  }),
  maxBatchSize: Type.Integer({ minimum: 1, maximum: 100000 }),
  predictionCache: Type.Object({
    /** In-memory entries; 0 turns the prediction cache off (in Redis too). */
    size: Type.Integer({ minimum: 0 }),
    /** Entry lifetime in seconds; absent = the backend's default (memory: none, Redis: 3600). */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Which answers are stored: `repeat` (rows seen twice) or `always`; absent = the backend's default (memory: repeat, Redis: always). */
    admit: Type.Optional(Type.Union([Type.Literal('repeat'), Type.Literal('always')])),
  }),
  batching: Type.Object({
    /** Triton's max_queue_delay_microseconds for every model (a model's tag may override it). */
    maxQueueDelayUs: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    /** Most rows waiting per model before 503; absent = max(4096, 8 x the model's batch size). */
    maxQueueRows: Type.Optional(Type.Integer({ minimum: 1 })),
  }),
  requestTimeoutSeconds: Type.Number({ minimum: 0 }),
  bodyLimitBytes: Type.Integer({ minimum: 1024 }),
  datasetMaxBytes: Type.Integer({ minimum: 1024 }),
  prometheus: Type.Object({
    enabled: Type.Boolean(),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    requireAuth: Type.Boolean(),
  }),
  debug: Type.Boolean(),
  docsEnabled: Type.Boolean(),
  corsOrigins: Type.Array(Type.String()),
  rateLimitPerMinute: Type.Integer({ minimum: 0 }),
  predictionLogSampleRate: Type.Number({ minimum: 0, maximum: 1 }),
  predictionLog: Type.Object({
    retentionDays: Type.Number({ minimum: 0 }),
    maxRows: Type.Integer({ minimum: 0 }),
    bufferRows: Type.Integer({ minimum: 1 }),
  }),
  drift: Type.Object({
    checkIntervalSeconds: Type.Number({ minimum: 0 }),
    window: Type.Integer({ minimum: 1 }),
    minWindow: Type.Integer({ minimum: 1 }),
    shareThreshold: Type.Number({ minimum: 0, maximum: 1 }),
  }),
  shutdownTimeoutSeconds: Type.Number({ minimum: 0 }),
  shutdownDrainSeconds: Type.Number({ minimum: 0 }),
  trainingWorkers: Type.Integer({ minimum: 0, maximum: 64 }),
  /** Threads per training job when its params leave `n_jobs` unset; absent = derived from the cores (`jobThreads`). */
  trainingThreads: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
  /** Largest ONNX model a training job may produce (bytes). */
  trainingMaxModelBytes: Type.Integer({ minimum: 1024, maximum: ONNX_MAX_BYTES }),
  mlflowTrackingUri: Type.Optional(Type.String()),
  /** OpenAPI `info.title` and `info.version` (`apiVersion` absent: the server's version). */
  apiTitle: Type.String({ minLength: 1 }),
  apiVersion: Type.Optional(Type.String({ minLength: 1 })),
  /** The key CLI commands send to a server when `--api-key` is not given. */
  cliApiKey: Type.Optional(Type.String()),
});

export type Config = Readonly<Static<typeof ConfigSchema>>;

/** A configuration value that cannot be used; the message names the variable and the expected form. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
    readonly value: string,
  ) {
    super(`invalid configuration: ${variable}=${JSON.stringify(value)}; expected ${expected}`);
    this.name = 'ConfigError';
  }
}

/** Settings given on the command line; they win over the environment. */
export interface ConfigOverrides {
  readonly host?: string;
  readonly port?: number;
  readonly dataDir?: string;
  /** `serve --demo` serves the demo model by default unless MODEL_NAME says otherwise. */
  readonly defaultModelName?: string;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/** Hides a password in a URL so error lines and logs never carry it. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return raw.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/** The expected form of a variable, from its schema, for error lines. */
function expectedForm(schema: TSchema): string {
  const s = schema as TSchema & { minimum?: number; maximum?: number; minLength?: number; anyOf?: { const?: unknown }[]; 'x-url'?: string[] };
  if (s['x-url'] !== undefined) return `a URL with scheme ${s['x-url'].join(' or ')}`;
  switch (s[Kind]) {
    case 'Integer':
      return `an integer from ${s.minimum} to ${s.maximum}`;
    case 'Number':
      return `a number from ${s.minimum} to ${s.maximum}`;
    case 'Boolean':
      return 'true or false';
    case 'Union':
      return `one of ${(s.anyOf ?? []).map((a) => String(a.const)).join(', ')}`;
    default:
      return s.minLength !== undefined && s.minLength > 1 ? `a secret of at least ${s.minLength} characters` : 'a non-empty string';
  }
}

/** Converts one variable's text by its schema; throws `ConfigError` naming it. */
function convert(name: string, schema: TSchema, raw: string): unknown {
  const s = schema as TSchema & { minimum?: number; maximum?: number; minLength?: number; anyOf?: { const?: unknown }[]; 'x-url'?: string[]; 'x-secret'?: boolean };
  const shown = s['x-secret'] === true ? '<hidden>' : s['x-url'] !== undefined ? redactUrl(raw) : raw;
  const fail = (): never => {
    throw new ConfigError(name, expectedForm(schema), shown);
  };
  if (s['x-url'] !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigError(name, `a URL such as ${s['x-url'][0]}//host:port/...`, shown);
    }
    if (!s['x-url'].includes(parsed.protocol)) fail();
    return raw;
  }
  let value: unknown = raw;
  switch (s[Kind]) {
    case 'Integer':
      if (!/^-?\d+$/.test(raw)) fail();
      value = Number(raw);
      break;
    case 'Number':
      value = Number(raw);
      if (!Number.isFinite(value)) fail();
      break;
    case 'Boolean':
      if (TRUE.includes(raw.toLowerCase())) value = true;
      else if (FALSE.includes(raw.toLowerCase())) value = false;
      else fail();
      break;
    case 'Union':
      // Choices match case-insensitively and are stored as the schema spells them.
      value = (s.anyOf ?? []).map((a) => a.const).find((c) => typeof c === 'string' && c.toLowerCase() === raw.toLowerCase()) ?? fail();
      break;
  }
  if (!Value.Check(schema, value)) fail();
  return value;
}

/**
 * Reads every variable of `EnvSchema` from `env` (blank counts as unset), converts it by its
 * schema and fills in the defaults. Throws `ConfigError` for the first invalid variable.
 */
export function readEnv(env: Readonly<Record<string, string | undefined>>): Env {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(EnvSchema.properties) as [string, TSchema][]) {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') {
      const fallback = (schema as { default?: unknown }).default;
      if (fallback !== undefined) out[name] = fallback;
      continue;
    }
    out[name] = convert(name, schema, raw);
  }
  return out as Env;
}

/**
 * Reads the configuration from environment variables (and optional CLI overrides, which win).
 * Throws `ConfigError` for the first invalid variable.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env, overrides: ConfigOverrides = {}): Config {
  const e = readEnv(env);
  const redisUrl = e.REDIS_URL ?? (e.REDIS_HOST === undefined ? undefined : `redis://${e.REDIS_HOST}:${e.REDIS_PORT}`);

  let modelPath = e.MODEL_PATH;
  if (modelPath === undefined && e.S3_BUCKET_NAME !== undefined && e.MODEL_KEY !== undefined) {
    modelPath = `s3://${e.S3_BUCKET_NAME}/${e.MODEL_KEY.replace(/^\/+/, '')}`;
  }
  if (modelPath?.startsWith('s3://') === true && !/^s3:\/\/[^/]+\/.+/.test(modelPath)) {
    throw new ConfigError('MODEL_PATH', 's3://bucket/key or a local file path', modelPath);
  }
  if (e.ARTIFACT_ROOT?.startsWith('s3://') === true && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(e.ARTIFACT_ROOT)) {
    throw new ConfigError('ARTIFACT_ROOT', 's3://bucket[/prefix] or a local directory', e.ARTIFACT_ROOT);
  }
  const logPretty = e.LOG_FORMAT === 'pretty' || (e.LOG_FORMAT === 'auto' && process.stdout.isTTY === true && e.CI === undefined);

  const config: Static<typeof ConfigSchema> = {
    host: overrides.host ?? e.API_HOST,
    port: overrides.port ?? e.API_PORT,
    ...optional('apiKey', e.API_KEY),
    logLevel: e.LOG_LEVEL,
    logPretty,
    dataDir: path.resolve(overrides.dataDir ?? e.DATA_DIR),
    ...optional('databaseUrl', e.DATABASE_URL),
    ...optional('redisUrl', redisUrl),
    redis: { commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: e.REDIS_CONNECT_TIMEOUT_MS },
    ...optional('artifactRoot', e.ARTIFACT_ROOT),
    s3: {
      ...optional('endpoint', e.S3_ENDPOINT_URL ?? e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL),
      forcePathStyle: e.S3_FORCE_PATH_STYLE,
      ...optional('region', e.AWS_REGION ?? e.AWS_DEFAULT_REGION),
    },
    model: {
      ...optional('name', e.MODEL_NAME ?? overrides.defaultModelName),
      stage: e.MODEL_STAGE,
      ...(e.MODEL_FALLBACK_STAGE === 'none' ? {} : { fallbackStage: e.MODEL_FALLBACK_STAGE }),
      ...optional('path', modelPath),
      cacheTtlSeconds: e.MODEL_CACHE_TTL,
      device: e.MODEL_DEVICE,
      inferenceThread: e.INFERENCE_THREAD,
    },
    maxBatchSize: e.MAX_BATCH_SIZE,
    predictionCache: {
      size: e.PREDICTION_CACHE_SIZE,
      ...optional('ttlSeconds', e.PREDICTION_CACHE_TTL),
      ...optional('admit', e.PREDICTION_CACHE_ADMIT),
    },
    batching: {
      maxQueueDelayUs: e.BATCH_MAX_QUEUE_DELAY_US,
      ...optional('maxQueueRows', e.BATCH_MAX_QUEUE_ROWS),
    },
    requestTimeoutSeconds: e.REQUEST_TIMEOUT,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    datasetMaxBytes: e.DATASET_MAX_BYTES,
    prometheus: {
      enabled: e.ENABLE_PROMETHEUS,
      ...optional('port', e.PROMETHEUS_PORT),
      requireAuth: e.METRICS_REQUIRE_AUTH,
    },
    debug: e.API_DEBUG,
    docsEnabled: e.DOCS_ENABLED,
    corsOrigins: e.CORS_ORIGINS === undefined ? [] : e.CORS_ORIGINS.split(',').map((o) => o.trim()).filter((o) => o !== ''),
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    predictionLogSampleRate: e.PREDICTION_LOG_SAMPLE_RATE,
    predictionLog: { retentionDays: e.PREDICTION_LOG_RETENTION_DAYS, maxRows: e.PREDICTION_LOG_MAX_ROWS, bufferRows: e.PREDICTION_LOG_BUFFER_ROWS },
    drift: {
      checkIntervalSeconds: e.DRIFT_CHECK_INTERVAL,
      window: e.DRIFT_WINDOW,
      minWindow: e.DRIFT_MIN_WINDOW,
      shareThreshold: e.DRIFT_SHARE_THRESHOLD,
    },
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT,
    shutdownDrainSeconds: e.SHUTDOWN_DRAIN_SECONDS,
    trainingWorkers: e.TRAINING_WORKERS,
    ...optional('trainingThreads', e.TRAINING_THREADS),
    trainingMaxModelBytes: e.TRAINING_MAX_MODEL_BYTES,
    ...optional('mlflowTrackingUri', e.MLFLOW_TRACKING_URI),
    apiTitle: e.API_TITLE,
    ...optional('apiVersion', e.API_VERSION),
    ...optional('cliApiKey', e.MODELPLANE_API_KEY ?? e.API_KEY),
  };
  return deepFreeze(config);
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
