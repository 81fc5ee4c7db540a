import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Environment -> validated, frozen configuration. Names are the ones the systems modelplane
 * replaces already use (see ARCHITECTURE.md "Configuration"), so existing deployments keep their
 * environment files. Parsed once at start; a bad value stops the process with one line naming the
 * variable and the expected form.
 */

export const Stage = Type.Union([
  Type.Literal('None'),
  Type.Literal('Staging'),
  Type.Literal('Production'),
  Type.Literal('Archived'),
]);
export type Stage = Static<typeof Stage>;

export const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
);

export const ConfigSchema = Type.Object({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  apiKey: Type.Optional(Type.String({ minLength: 16 })),
  logLevel: LogLevel,
  dataDir: Type.String({ minLength: 1 }),
  databaseUrl: Type.Optional(Type.String()),
  redisUrl: Type.Optional(Type.String()),
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
  shutdownTimeoutSeconds: Type.Number({ minimum: 0 }),
  trainingWorkers: Type.Integer({ minimum: 0, maximum: 64 }),
  mlflowTrackingUri: Type.Optional(Type.String()),
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

type Env = Readonly<Record<string, string | undefined>>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  }
  return Number(raw);
}

function num(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(name, `a number from ${min} to ${max}`, raw);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function oneOf<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T, caseInsensitive = true): T {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const found = choices.find((c) => (caseInsensitive ? c.toLowerCase() === raw.toLowerCase() : c === raw));
  if (found === undefined) throw new ConfigError(name, `one of ${choices.join(', ')}`, raw);
  return found;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `a URL such as ${protocols[0]}//host:port/...`, redactUrl(raw));
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `a URL with scheme ${protocols.join(' or ')}`, redactUrl(raw));
  }
  return raw;
}

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

const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;

/**
 * Reads the configuration from environment variables (and optional CLI overrides, which win).
 * Throws `ConfigError` for the first invalid variable.
 */
export function loadConfig(
  env: Env = process.env,
  overrides: { host?: string; port?: number; dataDir?: string } = {},
): Config {
  const redisUrl =
    url(env, 'REDIS_URL', ['redis:', 'rediss:']) ??
    (str(env, 'REDIS_HOST') !== undefined
      ? `redis://${str(env, 'REDIS_HOST')}:${int(env, 'REDIS_PORT', 6379, 1, 65535)}`
      : undefined);

  const s3Bucket = str(env, 'S3_BUCKET_NAME');
  const modelKey = str(env, 'MODEL_KEY');
  let modelPath = str(env, 'MODEL_PATH');
  if (modelPath === undefined && s3Bucket !== undefined && modelKey !== undefined) {
    modelPath = `s3://${s3Bucket}/${modelKey.replace(/^\/+/, '')}`;
  }
  if (modelPath?.startsWith('s3://') === true && !/^s3:\/\/[^/]+\/.+/.test(modelPath)) {
    throw new ConfigError('MODEL_PATH', 's3://bucket/key or a local file path', modelPath);
  }

  const artifactRoot = str(env, 'ARTIFACT_ROOT');
  if (artifactRoot?.startsWith('s3://') === true && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(artifactRoot)) {
    throw new ConfigError('ARTIFACT_ROOT', 's3://bucket[/prefix] or a local directory', artifactRoot);
  }

  const dataDir = path.resolve(overrides.dataDir ?? str(env, 'DATA_DIR') ?? 'data');
  const corsRaw = str(env, 'CORS_ORIGINS');
  const apiKey = str(env, 'API_KEY');
  if (apiKey !== undefined && apiKey.length < 16) {
    throw new ConfigError('API_KEY', 'a secret of at least 16 characters', '<hidden>');
  }
  const fallback = str(env, 'MODEL_FALLBACK_STAGE');

  const config: Static<typeof ConfigSchema> = {
    host: overrides.host ?? str(env, 'API_HOST') ?? '127.0.0.1',
    port: overrides.port ?? int(env, 'API_PORT', 8000, 0, 65535),
    ...(apiKey !== undefined ? { apiKey } : {}),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    dataDir,
    ...optional('databaseUrl', url(env, 'DATABASE_URL', ['postgres:', 'postgresql:'])),
    ...optional('redisUrl', redisUrl),
    ...optional('artifactRoot', artifactRoot),
    s3: {
      ...optional('endpoint', url(env, 'S3_ENDPOINT_URL', ['http:', 'https:']) ?? url(env, 'AWS_ENDPOINT_URL_S3', ['http:', 'https:']) ?? url(env, 'AWS_ENDPOINT_URL', ['http:', 'https:'])),
      forcePathStyle: bool(env, 'S3_FORCE_PATH_STYLE', false),
      ...optional('region', str(env, 'AWS_REGION') ?? str(env, 'AWS_DEFAULT_REGION')),
    },
    model: {
      ...optional('name', str(env, 'MODEL_NAME')),
      stage: oneOf(env, 'MODEL_STAGE', STAGES, 'Production'),
      ...(fallback === undefined
        ? { fallbackStage: 'Staging' as const }
        : fallback.toLowerCase() === 'none' || fallback === '-'
          ? {}
          : { fallbackStage: oneOf(env, 'MODEL_FALLBACK_STAGE', STAGES, 'Staging') }),
      ...optional('path', modelPath),
      cacheTtlSeconds: num(env, 'MODEL_CACHE_TTL', 60, 0, 86400 * 365),
      device: oneOf(env, 'MODEL_DEVICE', ['cpu', 'cuda'], 'cpu'),
      inferenceThread: bool(env, 'INFERENCE_THREAD', false),
    },
    maxBatchSize: int(env, 'MAX_BATCH_SIZE', 1000, 1, 100000),
    predictionCache: {
      size: int(env, 'PREDICTION_CACHE_SIZE', 10_000, 0, 2 ** 31),
      ...optional('ttlSeconds', str(env, 'PREDICTION_CACHE_TTL') === undefined ? undefined : int(env, 'PREDICTION_CACHE_TTL', 0, 0, 86400 * 365)),
      ...optional('admit', str(env, 'PREDICTION_CACHE_ADMIT') === undefined ? undefined : oneOf(env, 'PREDICTION_CACHE_ADMIT', ['repeat', 'always'] as const, 'repeat')),
    },
    batching: {
      maxQueueDelayUs: int(env, 'BATCH_MAX_QUEUE_DELAY_US', 0, 0, 10_000_000),
      ...optional('maxQueueRows', str(env, 'BATCH_MAX_QUEUE_ROWS') === undefined ? undefined : int(env, 'BATCH_MAX_QUEUE_ROWS', 0, 1, 2 ** 31)),
    },
    requestTimeoutSeconds: num(env, 'REQUEST_TIMEOUT', 30, 0, 3600),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 16 * 1024 * 1024, 1024, 2 ** 31),
    datasetMaxBytes: int(env, 'DATASET_MAX_BYTES', 200 * 1024 * 1024, 1024, 2 ** 40),
    prometheus: {
      enabled: bool(env, 'ENABLE_PROMETHEUS', true),
      ...optional('port', str(env, 'PROMETHEUS_PORT') === undefined ? undefined : int(env, 'PROMETHEUS_PORT', 0, 0, 65535)),
      requireAuth: bool(env, 'METRICS_REQUIRE_AUTH', false),
    },
    debug: bool(env, 'API_DEBUG', false),
    docsEnabled: bool(env, 'DOCS_ENABLED', true),
    corsOrigins: corsRaw === undefined ? [] : corsRaw.split(',').map((o) => o.trim()).filter((o) => o !== ''),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 100000, 0, 2 ** 31),
    predictionLogSampleRate: num(env, 'PREDICTION_LOG_SAMPLE_RATE', 1, 0, 1),
    shutdownTimeoutSeconds: num(env, 'SHUTDOWN_TIMEOUT', 10, 0, 3600),
    trainingWorkers: int(env, 'TRAINING_WORKERS', 1, 0, 64),
    ...optional('mlflowTrackingUri', str(env, 'MLFLOW_TRACKING_URI')),
  };
  // Defence in depth: the hand parsing above must always produce a schema-valid object.
  const firstError = Value.Errors(ConfigSchema, config).First();
  if (firstError !== undefined) {
    throw new ConfigError(firstError.path, firstError.message, String(firstError.value));
  }
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
