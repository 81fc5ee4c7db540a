/**
 * Reading one parameter's JSON Schema (as `GET /train/algorithms` gives it) into what a form
 * field needs: the kind of control, choices, numeric range, and how to turn the text typed into
 * the JSON value sent to `POST /train`.
 */
export type ParamValue = number | string | boolean | null;

interface JsonSchema {
  readonly type?: string;
  readonly const?: unknown;
  readonly anyOf?: readonly JsonSchema[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly description?: string;
}

export interface ParamField {
  readonly name: string;
  /** `choice`: a select of fixed values; `number`: a number input; `text`: numbers or keywords. */
  readonly control: 'choice' | 'number' | 'text';
  readonly choices: readonly ParamValue[];
  readonly numeric: { readonly integer: boolean; readonly min?: number; readonly max?: number; readonly range: string } | undefined;
  readonly nullable: boolean;
  readonly boolean: boolean;
  readonly description: string | undefined;
}

function branches(s: JsonSchema): JsonSchema[] {
  return s.anyOf === undefined ? [s] : s.anyOf.flatMap(branches);
}

function rangeText(b: JsonSchema): string {
  const lo = b.minimum !== undefined ? `≥ ${b.minimum}` : b.exclusiveMinimum !== undefined ? `> ${b.exclusiveMinimum}` : undefined;
  const hi = b.maximum !== undefined ? `≤ ${b.maximum}` : b.exclusiveMaximum !== undefined ? `< ${b.exclusiveMaximum}` : undefined;
  return [lo, hi].filter((x) => x !== undefined).join(' and ');
}

export function describeParam(name: string, schema: unknown): ParamField {
  const s = schema as JsonSchema;
  const all = branches(s);
  const choices: ParamValue[] = [];
  let nullable = false;
  let boolean = false;
  const numerics: JsonSchema[] = [];
  for (const b of all) {
    if (b.const !== undefined) choices.push(b.const as ParamValue);
    else if (b.type === 'null') nullable = true;
    else if (b.type === 'boolean') boolean = true;
    else if (b.type === 'integer' || b.type === 'number') numerics.push(b);
  }
  const numeric =
    numerics.length === 0
      ? undefined
      : {
          integer: numerics.every((b) => b.type === 'integer'),
          ...(numerics.length === 1 && numerics[0]!.minimum !== undefined ? { min: numerics[0]!.minimum } : {}),
          ...(numerics.length === 1 && numerics[0]!.maximum !== undefined ? { max: numerics[0]!.maximum } : {}),
          range: numerics.map((b) => `${b.type === 'integer' ? 'integer' : 'number'}${rangeText(b) === '' ? '' : ` ${rangeText(b)}`}`).join(', or '),
        };
  const control = numeric === undefined ? 'choice' : choices.length === 0 && !boolean && !nullable ? 'number' : 'text';
  const choiceList = [...choices, ...(boolean ? [true, false] : []), ...(nullable && numeric === undefined ? [null] : [])];
  return { name, control, choices: choiceList, numeric, nullable, boolean, description: s.description };
}

/** The words a `text` field accepts besides numbers. */
export function keywordsOf(f: ParamField): string[] {
  return [...f.choices.map((c) => String(c)), ...(f.nullable ? ['null'] : []), ...(f.boolean ? ['true', 'false'] : [])];
}

/** The value to send for what was typed or chosen; `undefined` = not given (the default applies). */
export function parseParam(f: ParamField, text: string): ParamValue | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  if (f.control === 'choice') return JSON.parse(t) as ParamValue;
  if (f.nullable && (t === 'null' || t === 'none')) return null;
  if (f.boolean && (t === 'true' || t === 'false')) return t === 'true';
  const choice = f.choices.find((c) => String(c) === t);
  if (choice !== undefined) return choice;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

export const showValue = (v: ParamValue | undefined): string => (v === undefined ? '—' : v === null ? 'null' : String(v));
