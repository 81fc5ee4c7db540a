/**
 * An inference request of the Open Inference Protocol, read and checked: `id`, `parameters`,
 * `inputs` (JSON `data` or the binary tensor extension's `binary_data_size`), `outputs`. Then its
 * inputs become the model's rows: one `[N, F]` tensor in feature order, or one `[N]` tensor per
 * feature matched by name (MLServer's columnar form).
 */
import type { ModelRows } from '../serving/input.ts';
import { FLOAT32_MAX, type LoadedModel } from '../serving/loaded-model.ts';
import type { FloatRows } from '../serving/runtime.ts';
import { badInfer, decodeBytesElements, elementBytes, elementCount, flatten, isDatatype, jsonMismatch, rawElement, type InputTensor, type TensorElements } from './tensors.ts';

/** One requested output: its name and whether it comes back as binary data. */
export interface RequestedOutput {
  readonly name: string;
  readonly binary: boolean;
}

export interface InferRequest {
  /** The request's `id`, echoed in the answer. */
  readonly id: string | undefined;
  readonly inputs: readonly InputTensor[];
  /** The outputs asked for, in order; `undefined` = every output. */
  readonly outputs: readonly RequestedOutput[] | undefined;
  /** `parameters.binary_data_output`: outputs not named in `outputs` come back as binary. */
  readonly binaryOutput: boolean;
}

/** The body of an infer request as the parser hands it over: the JSON header and the bytes after it. */
export interface InferBody {
  readonly header: unknown;
  /** The binary section (`Inference-Header-Content-Length` set), else `undefined`. */
  readonly binary: Buffer | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parameters this server cannot honour: asking for them is a 400 rather than an answer that ignores them. */
const UNSUPPORTED_INPUT_PARAMETERS = ['shared_memory_region', 'shared_memory_byte_size', 'shared_memory_offset'];
const UNSUPPORTED_OUTPUT_PARAMETERS = ['shared_memory_region', 'shared_memory_byte_size', 'shared_memory_offset', 'classification'];
const UNSUPPORTED_REQUEST_PARAMETERS = ['sequence_id', 'sequence_start', 'sequence_end'];

function refuseUnsupported(parameters: Record<string, unknown>, names: readonly string[], what: string): void {
  for (const n of names) if (parameters[n] !== undefined) throw badInfer(`${what}: parameter '${n}' is not supported by this server`);
}

function readParameters(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObject(v)) throw badInfer(`${what}: parameters must be an object`);
  return v;
}

/**
 * Reads an infer request: every input's shape, datatype and data checked (element count against
 * the shape, binary sizes against the bytes sent, which must be used up exactly).
 * @throws AppError 400 naming the input, output or field at fault
 */
export function readInferRequest(body: InferBody): InferRequest {
  const h = body.header;
  if (!isObject(h)) throw badInfer('the inference request must be a JSON object');
  const id = h['id'];
  if (id !== undefined && typeof id !== 'string') throw badInfer('id must be a string');
  const parameters = readParameters(h['parameters'], 'request');
  refuseUnsupported(parameters, UNSUPPORTED_REQUEST_PARAMETERS, 'request');
  const binaryOutput = parameters['binary_data_output'];
  if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') throw badInfer('parameter binary_data_output must be a boolean');

  const rawInputs = h['inputs'];
  if (!Array.isArray(rawInputs) || rawInputs.length === 0) throw badInfer('inputs must be a non-empty array of tensors');
  const binary = body.binary;
  let at = 0;
  const inputs: InputTensor[] = [];
  const names = new Set<string>();
  for (let k = 0; k < rawInputs.length; k++) {
    const input: unknown = rawInputs[k];
    if (!isObject(input)) throw badInfer(`inputs[${k}] must be an object {name, shape, datatype, data}`);
    const name = input['name'];
    if (typeof name !== 'string' || name === '') throw badInfer(`inputs[${k}]: name must be a non-empty string`);
    const what = `input '${name}'`;
    if (names.has(name)) throw badInfer(`${what} is given twice`);
    names.add(name);
    const datatype = input['datatype'];
    if (!isDatatype(datatype)) throw badInfer(`${what}: datatype ${JSON.stringify(datatype) ?? 'undefined'} is not supported (FP32, FP64, INT8..INT64, UINT8..UINT64, BOOL, BYTES)`);
    const count = elementCount(input['shape'], what);
    const shape = input['shape'] as number[];
    const inputParameters = readParameters(input['parameters'], what);
    refuseUnsupported(inputParameters, UNSUPPORTED_INPUT_PARAMETERS, what);
    const size = inputParameters['binary_data_size'];
    let elements: TensorElements;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw badInfer(`${what}: binary_data_size must be a non-negative integer`);
      if (input['data'] !== undefined) throw badInfer(`${what}: give data or binary_data_size, not both`);
      if (binary === undefined) throw badInfer(`${what}: binary_data_size needs the Inference-Header-Content-Length header and the binary data after the JSON`);
      if (at + size > binary.length) throw badInfer(`${what}: binary_data_size ${size} goes past the end of the request body (${binary.length - at} bytes left)`);
      const bytes = binary.subarray(at, at + size);
      at += size;
      const per = elementBytes(datatype);
      if (per === undefined) elements = { kind: 'strings', values: decodeBytesElements(bytes, count, what) };
      else {
        if (size !== count * per) throw badInfer(`${what}: binary_data_size is ${size} bytes but shape ${JSON.stringify(shape)} of ${datatype} needs ${count * per}`);
        elements = { kind: 'raw', bytes };
      }
    } else {
      if (input['data'] === undefined) throw badInfer(`${what}: data is missing`);
      const values = flatten(input['data'], what);
      if (values.length !== count) throw badInfer(`${what}: data holds ${values.length} elements but shape ${JSON.stringify(shape)} has ${count}`);
      elements = { kind: 'json', values };
    }
    inputs.push({ name, datatype, shape, count, elements });
  }
  if (binary !== undefined && at !== binary.length) {
    throw badInfer(`the request body has ${binary.length - at} bytes after the inputs' binary data (the binary_data_size of the inputs add up to ${at})`);
  }
  return { id, inputs, outputs: readOutputs(h['outputs']), binaryOutput: binaryOutput === true };
}

function readOutputs(v: unknown): RequestedOutput[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw badInfer('outputs must be an array of {name, parameters}');
  const out: RequestedOutput[] = [];
  const seen = new Set<string>();
  for (let k = 0; k < v.length; k++) {
    const o: unknown = v[k];
    if (!isObject(o) || typeof o['name'] !== 'string') throw badInfer(`outputs[${k}] must be an object with a name`);
    const name = o['name'];
    if (seen.has(name)) throw badInfer(`output '${name}' is requested twice`);
    seen.add(name);
    const parameters = readParameters(o['parameters'], `output '${name}'`);
    refuseUnsupported(parameters, UNSUPPORTED_OUTPUT_PARAMETERS, `output '${name}'`);
    const binary = parameters['binary_data'];
    if (binary !== undefined && typeof binary !== 'boolean') throw badInfer(`output '${name}': parameter binary_data must be a boolean`);
    out.push({ name, binary: binary === true });
  }
  return out;
}

// ------------------------------------------------------------------ inputs -> rows

/**
 * The model's rows from the request's inputs, in a buffer from the model's spares (`takeRows`).
 * One input of shape `[N, F]` is the rows in feature order; otherwise every input must be one
 * feature's column (named after it, shape `[N]` or `[N, 1]`), every feature given once.
 * @throws AppError 400 naming the input (or element) at fault
 */
export function readInferRows(request: InferRequest, model: LoadedModel, maxRows: number): ModelRows {
  const f = model.nFeatures;
  const inputs = request.inputs;
  const first = inputs[0]!;
  if (inputs.length === 1 && first.shape.length === 2 && first.shape[1] === f) {
    const rows = first.shape[0]!;
    checkRows(rows, maxRows, `input '${first.name}'`);
    const out = model.takeRows(rows);
    try {
      fillRows(first, model, out);
    } catch (err) {
      model.releaseRows(out);
      throw err;
    }
    return { input: out, rows };
  }
  return readColumns(inputs, model, maxRows);
}

function checkRows(rows: number, maxRows: number, what: string): void {
  if (rows === 0) throw badInfer(`${what} holds no rows; send at least one`);
  if (rows > maxRows) throw badInfer(`${what} holds ${rows} rows; at most ${maxRows} are accepted per request (MAX_BATCH_SIZE)`);
}

/** MLServer's columnar form: one input per feature, shape `[N]` (or `[N, 1]`). */
function readColumns(inputs: readonly InputTensor[], model: LoadedModel, maxRows: number): ModelRows {
  const f = model.nFeatures;
  const columns = new Int32Array(inputs.length);
  let rows = -1;
  for (let k = 0; k < inputs.length; k++) {
    const t = inputs[k]!;
    const j = model.featureIndex.get(t.name);
    if (j === undefined) {
      throw badInfer(
        inputs.length === 1
          ? `input '${t.name}' must have shape [N, ${f}] (rows of the model's ${f} features), or send one input per feature named after it with shape [N]; '${t.name}' is not a feature of this model`
          : `input '${t.name}' is not a feature of this model (one input per feature, named after it, shape [N]; features: ${model.featureNames.join(', ')})`,
      );
    }
    const n = t.shape[0];
    if (n === undefined || t.shape.length > 2 || (t.shape.length === 2 && t.shape[1] !== 1)) throw badInfer(`input '${t.name}' must have shape [N] (one value per row), not ${JSON.stringify(t.shape)}`);
    if (rows === -1) rows = n;
    else if (n !== rows) throw badInfer(`input '${t.name}' has ${n} rows but input '${inputs[0]!.name}' has ${rows}`);
    columns[k] = j;
  }
  if (inputs.length !== f) {
    const given = new Set(inputs.map((t) => t.name));
    const missing = model.featureNames.filter((n) => !given.has(n));
    throw badInfer(`missing features: ${missing.join(', ')} (one input per feature, shape [N], or one input of shape [N, ${f}])`);
  }
  checkRows(rows, maxRows, `input '${inputs[0]!.name}'`);
  const out = model.takeRows(rows);
  try {
    for (let k = 0; k < inputs.length; k++) fillColumn(inputs[k]!, model, out, columns[k]!, rows);
  } catch (err) {
    model.releaseRows(out);
    throw err;
  }
  return { input: out, rows };
}

/** Every element of a `[N, F]` input into `out`; raw FP32 (FP64) into a float32 (float64) model is one copy. */
function fillRows(t: InputTensor, model: LoadedModel, out: FloatRows): void {
  const f = model.nFeatures;
  const e = t.elements;
  if (e.kind === 'raw' && !model.hasCategorical && ((t.datatype === 'FP32' && !model.double) || (t.datatype === 'FP64' && model.double))) {
    // Byte copy: the wire is little-endian, as typed arrays are on every platform Node runs on.
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(e.bytes);
    for (let i = 0; i < out.length; i++) {
      const v = out[i]!;
      if (v - v !== 0) throw badInfer(`input '${t.name}': element ${i} (row ${Math.floor(i / f)}, feature '${model.featureNames[i % f]!}') must be a finite number`);
    }
    return;
  }
  const read = elementReader(t);
  for (let i = 0; i < t.count; i++) put(model, i % f, read(i), out, i, t, i);
}

/** One feature's column from its `[N]` input. */
function fillColumn(t: InputTensor, model: LoadedModel, out: FloatRows, column: number, rows: number): void {
  const f = model.nFeatures;
  const read = elementReader(t);
  for (let r = 0; r < rows; r++) put(model, column, read(r), out, r * f + column, t, r);
}

/** Element `i` of an input: a number (numeric datatypes, BOOL as 0/1) or a string (BYTES); checked against the datatype. */
function elementReader(t: InputTensor): (i: number) => number | string {
  const e = t.elements;
  const datatype = t.datatype;
  switch (e.kind) {
    case 'raw':
      return (i) => rawElement(e.bytes, datatype, i);
    case 'strings':
      return (i) => e.values[i]!;
    case 'json':
      return (i) => {
        const v = e.values[i];
        const why = jsonMismatch(v, datatype);
        if (why !== undefined) throw badInfer(`input '${t.name}': element ${i}: ${why}`);
        return typeof v === 'boolean' ? (v ? 1 : 0) : (v as number | string);
      };
  }
}

/**
 * Writes one value into column `j`: numbers must be finite (and within float32 for float32
 * models); a categorical feature takes its label (BYTES) or a numeric label, an unseen one
 * becoming the "missing" code as at training time; numeric features take no strings.
 */
function put(model: LoadedModel, j: number, v: number | string, out: FloatRows, at: number, t: InputTensor, element: number): void {
  const codes = model.categoryCodes[j];
  if (typeof v === 'number') {
    if (v - v !== 0) throw badInfer(`input '${t.name}': element ${element} must be a finite number`);
    if (!model.double && (v > FLOAT32_MAX || v < -FLOAT32_MAX)) throw badInfer(`input '${t.name}': element ${element} is outside the float32 range the model computes in`);
    out[at] = codes == null ? v : (codes.get(String(v)) ?? Number.NaN);
    return;
  }
  if (codes == null) throw badInfer(`input '${t.name}': element ${element}: feature '${model.featureNames[j]!}' is numeric; send a number datatype (FP32, FP64, INT*), not BYTES`);
  out[at] = codes.get(v) ?? Number.NaN;
}
