/**
 * MLflow's input rules for tracking data: key syntax and lengths, value lengths, batch limits.
 * Violations are 400s with the code `invalid_parameter_value`, which the MLflow layer renders as
 * MLflow's INVALID_PARAMETER_VALUE.
 */
import { AppError } from '../platform/errors.ts';

/** MLflow's limits (mlflow/utils/validation.py, MLflow 2.x). */
export const LIMITS = {
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentTagValueLength: 5000,
  experimentNameLength: 500,
  runNameLength: 250,
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
} as const;

/** The error of every MLflow-style validation failure. */
export function invalidParameter(message: string): AppError {
  return new AppError(400, 'invalid_parameter_value', message);
}

// Letters and digits of any script, underscore, dash, period, space, colon and slash, as MLflow.
const KEY_CHARS = /^[\p{L}\p{N}_\-. :/]+$/u;

/**
 * Checks a metric/param/tag key. Keys may be used as file names by clients, so they must also be
 * normalised relative paths (no leading `/`, no empty, `.` or `..` segments), as MLflow requires.
 */
export function validateKey(kind: 'metric' | 'param' | 'tag', key: unknown): string {
  if (typeof key !== 'string' || key === '') throw invalidParameter(`${kind} key must be a non-empty string`);
  if (key.length > LIMITS.keyLength) throw invalidParameter(`${kind} key '${key.slice(0, 40)}...' is longer than ${LIMITS.keyLength} characters`);
  if (!KEY_CHARS.test(key)) {
    throw invalidParameter(
      `invalid ${kind} name '${key}': names may only contain letters, digits, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)`,
    );
  }
  if (key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw invalidParameter(`invalid ${kind} name '${key}': names are used as paths and must not start with '/' or have empty, '.' or '..' segments`);
  }
  return key;
}

export function validateParamValue(key: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidParameter(`value of param '${key}' must be a string`);
  if (value.length > LIMITS.paramValueLength) throw invalidParameter(`value of param '${key}' is longer than ${LIMITS.paramValueLength} characters`);
  return value;
}

export function validateTagValue(key: string, value: unknown, limit: number = LIMITS.tagValueLength): string {
  if (typeof value !== 'string') throw invalidParameter(`value of tag '${key}' must be a string`);
  if (value.length > limit) throw invalidParameter(`value of tag '${key}' is longer than ${limit} characters`);
  return value;
}

/** Metric values may be any double, NaN and ±Infinity included (MLflow stores NaN with a flag). */
export function validateMetricValue(key: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidParameter(`value of metric '${key}' must be a number (NaN and ±Infinity allowed)`);
  return value;
}

/** Timestamps (ms) and steps are 64-bit integers in MLflow; here they must be exact in a double. */
export function validateInteger(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidParameter(`${what} must be an integer, got ${String(value)}`);
  return value;
}

export function validateExperimentName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw invalidParameter('experiment name must be a non-empty string');
  if (name.length > LIMITS.experimentNameLength) throw invalidParameter(`experiment name is longer than ${LIMITS.experimentNameLength} characters`);
  return name;
}

export function validateRunName(name: unknown): string {
  if (typeof name !== 'string') throw invalidParameter('run name must be a string');
  if (name.length > LIMITS.runNameLength) throw invalidParameter(`run name is longer than ${LIMITS.runNameLength} characters`);
  return name;
}

/**
 * Checks a run artifact path: relative, `/`-separated, no empty, `.` or `..` segments, no
 * backslash or NUL. Refusing rather than normalising, so no path can reach outside the run.
 */
export function validateArtifactPath(path: unknown, allowEmpty: boolean): string {
  if (typeof path !== 'string') throw invalidParameter('artifact path must be a string');
  if (path === '') {
    if (allowEmpty) return path;
    throw invalidParameter('artifact path must not be empty');
  }
  if (path.includes('\0') || path.includes('\\')) throw invalidParameter(`artifact path '${path}' is refused: it contains a backslash or NUL`);
  if (path.startsWith('/')) throw invalidParameter(`artifact path '${path}' is refused: it is absolute`);
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw invalidParameter(`artifact path '${path}' is refused: it has an empty, '.' or '..' segment`);
  }
  return path;
}
