/**
 * Per-model serving tunables from registered-model tags, the way an MLflow user configures a
 * model (`MlflowClient().set_registered_model_tag(name, "modelplane.max_queue_delay_us", "500")`
 * or `PATCH /models/{name}` with `{"tags": {...}}`). Tags are read when a version is loaded; a
 * value that is not a valid number is reported and ignored, so a typo never stops serving.
 */

/** Every serving tunable's tag starts with this (setting them on a serving model needs admin). */
export const TUNABLE_PREFIX = 'modelplane.';
/** Triton's max_queue_delay_microseconds for this model. */
export const MAX_QUEUE_DELAY_TAG = 'modelplane.max_queue_delay_us';
/** Most rows per onnxruntime run for this model. */
export const MAX_BATCH_SIZE_TAG = 'modelplane.max_batch_size';

/** What the tags of one registered model set; absent fields keep the server-wide values. */
export interface ModelTunables {
  readonly maxQueueDelayUs?: number;
  readonly maxBatchRows?: number;
}

/** A tag value that was ignored, and why. */
export interface IgnoredTag {
  readonly tag: string;
  readonly value: string;
  readonly expected: string;
}

interface TagRule {
  readonly tag: string;
  readonly field: keyof ModelTunables;
  readonly min: number;
  readonly max: number;
}

const RULES: readonly TagRule[] = [
  { tag: MAX_QUEUE_DELAY_TAG, field: 'maxQueueDelayUs', min: 0, max: 10_000_000 },
  { tag: MAX_BATCH_SIZE_TAG, field: 'maxBatchRows', min: 1, max: 100_000 },
];

/**
 * The tunables a registered model's tags set. Values must be whole numbers within range
 * (surrounding spaces allowed); anything else is passed to `onIgnored` and left out.
 */
export function tunablesFromTags(tags: Readonly<Record<string, string>> | undefined, onIgnored: (ignored: IgnoredTag) => void): ModelTunables {
  if (tags === undefined) return {};
  const out: { -readonly [K in keyof ModelTunables]: number } = {};
  for (const rule of RULES) {
    const raw = tags[rule.tag];
    if (raw === undefined) continue;
    const text = raw.trim();
    const n = Number(text);
    if (/^\d+$/.test(text) && n >= rule.min && n <= rule.max) out[rule.field] = n;
    else onIgnored({ tag: rule.tag, value: raw, expected: `an integer from ${rule.min} to ${rule.max}` });
  }
  return out;
}
