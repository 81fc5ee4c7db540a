/**
 * Upload form fields (multipart fields, query parameters or JSON properties) -> typed
 * registration options. Everything arrives as text in multipart forms, so lists accept both a
 * JSON array and a comma-separated list.
 */
import type { ClassLabel, SignatureHints } from '../onnx/signature.ts';
import { invalidField } from '../platform/errors.ts';
import type { DatasetRef } from './registry.model.ts';

/** What an upload may say besides the file. */
export interface UploadFields {
  readonly hints: SignatureHints;
  readonly description?: string;
  readonly runId?: string;
  readonly dataset?: DatasetRef;
  readonly tags?: Record<string, string>;
}

/** The field names an upload understands (others are refused so typos do not pass silently). */
export const UPLOAD_FIELDS = ['feature_names', 'class_labels', 'task', 'description', 'run_id', 'reference_dataset', 'tags'] as const;

const RUN_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Reads upload fields. Values may be strings (forms, query) or already-typed JSON values.
 * @param where JSON pointer prefix for error paths, e.g. `/body` or `/querystring`
 * @throws AppError 400 naming the bad field
 */
export function parseUploadFields(fields: Readonly<Record<string, unknown>>, where: string): UploadFields {
  const hints: { featureNames?: string[]; classLabels?: ClassLabel[]; task?: 'classification' | 'regression' } = {};
  const out: { hints: SignatureHints; description?: string; runId?: string; dataset?: DatasetRef; tags?: Record<string, string> } = { hints };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === '') continue;
    const path = `${where}/${key}`;
    switch (key) {
      case 'feature_names': {
        const names = listOf(value, path);
        if (!names.every((n): n is string => typeof n === 'string' && n.length > 0)) {
          throw invalidField(path, 'must be a list of non-empty strings');
        }
        hints.featureNames = names;
        break;
      }
      case 'class_labels': {
        const labels = listOf(value, path);
        if (labels.length === 0 || !labels.every((l) => typeof l === 'string' || (typeof l === 'number' && Number.isFinite(l)))) {
          throw invalidField(path, 'must be a non-empty list of strings or numbers');
        }
        hints.classLabels = typeof value === 'string' && !value.trim().startsWith('[') ? numericIfAll(labels as string[]) : (labels as ClassLabel[]);
        break;
      }
      case 'task':
        if (value !== 'classification' && value !== 'regression') throw invalidField(path, "must be 'classification' or 'regression'");
        hints.task = value;
        break;
      case 'description':
        if (typeof value !== 'string' || value.length > 10_000) throw invalidField(path, 'must be a string of at most 10000 characters');
        out.description = value;
        break;
      case 'run_id':
        if (typeof value !== 'string' || !RUN_ID.test(value)) throw invalidField(path, 'must be a run id (letters, digits, _ and -)');
        out.runId = value;
        break;
      case 'reference_dataset':
        out.dataset = parseDatasetRef(value, path);
        break;
      case 'tags':
        out.tags = parseTags(typeof value === 'string' ? parseJson(value, path) : value, path);
        break;
      default:
        throw invalidField(path, `is not a known field (known: ${UPLOAD_FIELDS.join(', ')})`);
    }
  }
  return out;
}

/**
 * A dataset reference: `name`, `name:version`, `name@version`, or `{name, version?}`.
 * @throws AppError 400
 */
export function parseDatasetRef(value: unknown, path: string): DatasetRef {
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('{')) return parseDatasetRef(parseJson(text, path), path);
    const m = /^(.+?)(?:[:@](\d+))?$/.exec(text);
    if (!m || m[1] === undefined || m[1].length > 200 || (m[2] !== undefined && !(Number(m[2]) >= 1 && Number(m[2]) <= 2_147_483_647))) {
      throw invalidField(path, "must be 'name' or 'name:version' with a positive version");
    }
    return { name: m[1], version: m[2] === undefined ? null : Number(m[2]) };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { name, version } = value as { name?: unknown; version?: unknown };
    if (typeof name !== 'string' || name === '' || name.length > 200) throw invalidField(`${path}/name`, 'must be a non-empty string');
    if (version !== undefined && version !== null && !(Number.isInteger(version) && (version as number) > 0 && (version as number) <= 2_147_483_647)) {
      throw invalidField(`${path}/version`, 'must be a positive integer');
    }
    return { name, version: (version as number | null | undefined) ?? null };
  }
  throw invalidField(path, "must be 'name', 'name:version' or {name, version}");
}

/**
 * Tags: an object of string values (numbers and booleans are stringified), keys 1..250 chars.
 * @throws AppError 400
 */
export function parseTags(value: unknown, path: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidField(path, 'must be an object of string values');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.length === 0 || k.length > 250) throw invalidField(`${path}/${k}`, 'tag names have 1 to 250 characters');
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw invalidField(`${path}/${k}`, 'must be a string');
    if (out[k].length > 5000) throw invalidField(`${path}/${k}`, 'tag values have at most 5000 characters');
  }
  return out;
}

function listOf(value: unknown, path: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value !== 'string') throw invalidField(path, 'must be a JSON array or a comma-separated list');
  const text = value.trim();
  if (text.startsWith('[')) {
    const parsed = parseJson(text, path);
    if (!Array.isArray(parsed)) throw invalidField(path, 'must be a JSON array or a comma-separated list');
    return parsed;
  }
  return text.split(',').map((s) => s.trim());
}

/** `0,1,2` in a form means the integer labels 0, 1, 2; `setosa,versicolor` stays strings. */
function numericIfAll(labels: readonly string[]): ClassLabel[] {
  return labels.every((l) => /^-?\d+$/.test(l)) ? labels.map(Number) : [...labels];
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidField(path, 'is not valid JSON');
  }
}
