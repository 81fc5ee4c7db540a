/**
 * Fastify's own schema compilers (Ajv for validation, fast-json-stringify for replies), arranged
 * for start-up time:
 * - one compiled function per distinct schema instead of one per route and status code: every
 *   error status of every route answers the one `ErrorBody`, list routes share their page query,
 *   the prediction routes share their bodies;
 * - compiled when a request first needs them, not all at `app.ready()`: compiling every route's
 *   schemas up front was most of the server's start-up, and keeping them all compiled costs some
 *   12 MB of resident memory (generated sources and code) for the many routes a deployment never
 *   calls (MLflow, KServe, the catalogue). A route's first request pays its compile (a few ms).
 *   `compileAll()` compiles every schema, a slice at a time (the tests check that all compile).
 * Compiled functions are pure, so sharing one between routes, or compiling it later, changes
 * nothing but the time it is done.
 *
 * Type coercion is per part of the request: query strings, path parameters and headers are text
 * on the wire, so `"5"` becomes `5` there; JSON bodies carry their own types and are never
 * coerced (`{"version": true}` is refused, not read as version 1). Ajv turns a query value such
 * as `1e309` into `Infinity` and then skips `minimum`/`maximum`, so a coerced part also refuses
 * non-finite numbers, naming the field.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type BuildValidator = NonNullable<CompilersFactory['buildValidator']>;
type BuildSerializer = NonNullable<CompilersFactory['buildSerializer']>;

/** An Ajv validator: `errors` is read by Fastify after a failed call. */
type Validator = ((data: unknown) => unknown) & { errors?: unknown };

/** The parts of a request that arrive as text and so are coerced to their schema's types. */
const COERCED_PARTS = new Set(['querystring', 'params', 'headers']);

interface AjvOptions {
  customOptions?: Record<string, unknown>;
}

/**
 * Wraps a coerced part's validator: a number that is not finite can only come from coercing a
 * string such as `1e309` or `Infinity`, which Ajv lets past every numeric bound.
 */
function refuseNonFinite(validate: Validator): Validator {
  const fn: Validator = (data) => {
    const ok = validate(data);
    fn.errors = validate.errors;
    if (ok !== true || data === null || typeof data !== 'object') return ok;
    const bad = Object.entries(data).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v));
    if (bad.length === 0) return ok;
    fn.errors = bad.map(([k]) => ({ instancePath: `/${k}`, keyword: 'type', params: {}, message: 'must be a finite number' }));
    return false;
  };
  fn.errors = null;
  return fn;
}
type Serializer = (data: unknown) => string;

export interface SchemaCompilers {
  /** Fastify's `schemaController.compilersFactory`. */
  readonly factory: CompilersFactory;
  /** Compiles every schema not compiled yet, yielding to the event loop between slices. */
  compileAll(): Promise<void>;
}

export function schemaCompilers(): SchemaCompilers {
  const pending: (() => void)[] = [];

  /** One function per distinct (part, schema); compiled on its first call or by `compileAll`. */
  function memoise<D extends { schema?: unknown }, F>(compile: (def: D) => F, keyOf: (def: D) => string, lazy: (compile: () => F) => { fn: F; force: () => void }): (def: D) => F {
    const made = new Map<string, F>();
    return (def) => {
      const key = `${keyOf(def)}\u0000${JSON.stringify(def.schema)}`;
      let fn = made.get(key);
      if (fn === undefined) {
        const l = lazy(() => compile(def));
        fn = l.fn;
        made.set(key, fn);
        pending.push(l.force);
      }
      return fn;
    };
  }

  const lazyValidator = (compile: () => Validator): { fn: Validator; force: () => void } => {
    let compiled: Validator | undefined;
    const force = (): Validator => (compiled ??= compile());
    const fn: Validator = (data) => {
      const v = force();
      const result = v(data);
      fn.errors = v.errors;
      return result;
    };
    fn.errors = null;
    return { fn, force: () => void force() };
  };

  const lazySerializer = (compile: () => Serializer): { fn: Serializer; force: () => void } => {
    let compiled: Serializer | undefined;
    const force = (): Serializer => (compiled ??= compile());
    return { fn: (data) => force()(data), force: () => void force() };
  };

  const ajv = AjvCompiler();
  const serializers = SerializerSelector();
  type Compile = (def: { schema?: unknown; httpPart?: string }) => Validator;
  const buildValidator: BuildValidator = (externalSchemas, options) => {
    const given = (options ?? {}) as AjvOptions;
    // The two Ajv instances (each compiles its meta-schema and adds the shared schemas) are made
    // when the first schema is compiled, not when Fastify asks for the compiler at start-up.
    let coercing: Compile | undefined;
    let strict: Compile | undefined;
    const compile: Compile = (def) => {
      if (COERCED_PARTS.has(def.httpPart ?? '')) return refuseNonFinite((coercing ??= ajv(externalSchemas, given) as Compile)(def));
      strict ??= ajv(externalSchemas, { ...given, customOptions: { ...given.customOptions, coerceTypes: false } }) as Compile;
      return strict(def);
    };
    return memoise(compile, (def) => def.httpPart ?? '', lazyValidator) as never;
  };
  const buildSerializer: BuildSerializer = (externalSchemas, options) =>
    memoise(serializers(externalSchemas, options) as (def: { schema?: unknown }) => Serializer, () => '', lazySerializer) as never;

  return {
    factory: { buildValidator, buildSerializer },
    async compileAll() {
      while (pending.length > 0) {
        const slice = pending.splice(0, 8);
        for (const force of slice) force();
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
