/**
 * Hostile input against every operation the OpenAPI document lists: malformed path parameters,
 * query values (`1e309`, `Infinity`, `-1`, `''`, huge strings, repeated keys), wrong-typed and
 * junk JSON bodies, and content types the route does not take (multipart without a boundary,
 * truncated multipart). The contract is that bad input is a 4xx naming the field: the test
 * fails on any 5xx and on any request that does not answer within its deadline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx, multipart } from '../registry/fixtures.ts';

interface Param {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly schema?: Schema;
}
interface Schema {
  readonly type?: string | string[];
  readonly properties?: Record<string, Schema>;
  readonly items?: Schema;
  readonly enum?: unknown[];
  readonly const?: unknown;
  readonly anyOf?: Schema[];
}
interface Operation {
  readonly parameters?: Param[];
  readonly requestBody?: { content?: Record<string, { schema?: Schema }> };
}
interface Probe {
  readonly method: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly payload?: string | Buffer;
  readonly label: string;
}

/** A request that takes longer than this counts as a hang. */
const HANG_MS = 20_000;
const HUGE = 'x'.repeat(70_000);

/** Values a hostile client puts in a path segment. */
const PATH_VALUES = ['', 'nope', '-1', '0', '1e309', 'Infinity', 'NaN', '%00', '..%2F..%2Fetc', '%E0%A4%A', HUGE.slice(0, 1000), 'a%20b', '%F0%9F%92%A9'];
/** Values a hostile client puts in a query parameter (raw, already URL-encoded where needed). */
const QUERY_VALUES = ['', '-1', '0', '1e309', 'Infinity', '-Infinity', '1e400', 'NaN', '1.5', '99999999999999999999', 'true', 'null', '%00', encodeURIComponent('{"a":1}'), HUGE];
/** Values that replace one field of a plausible JSON body. */
const FIELD_VALUES: unknown[] = [true, 'x', '', -1, 1e308, 1.5, null, [], {}, [1, 'a', null], { a: { b: { c: [1, { d: 'e' }] } } }, 'x'.repeat(20_000)];
/** Whole bodies that are not what any route expects. */
const JUNK_BODIES = ['', 'null', '[]', '"x"', '1e309', '{"a":', '{}', '{"__proto__":{"x":1}}', JSON.stringify({ a: Array.from({ length: 2000 }, (_, i) => ({ i })) }), '['.repeat(5000) + ']'.repeat(5000)];

function typeOf(s: Schema | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null');
  if (s.type !== undefined) return s.type;
  if (s.anyOf !== undefined) return typeOf(s.anyOf[0]);
  return undefined;
}

/** A plausible value for a schema, so that mutating one field exercises that field. */
function sample(s: Schema | undefined, depth = 0): unknown {
  if (s === undefined || depth > 4) return 'x';
  if (s.const !== undefined) return s.const;
  if (s.enum !== undefined && s.enum.length > 0) return s.enum[0];
  if (s.anyOf !== undefined && s.anyOf.length > 0) return sample(s.anyOf[0], depth + 1);
  switch (typeOf(s)) {
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [sample(s.items, depth + 1)];
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) out[k] = sample(v, depth + 1);
      return out;
    }
    default:
      return 'fz';
  }
}

function fillPath(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => values[name] ?? 'fz');
}

/** Every hostile request for one operation. */
function probes(method: string, template: string, op: Operation): Probe[] {
  const out: Probe[] = [];
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const base = fillPath(template, {});
  const content = op.requestBody?.content ?? {};
  const jsonSchema = content['application/json']?.schema;
  const goodBody = jsonSchema === undefined ? undefined : JSON.stringify(sample(jsonSchema));
  const withBody = (p: Omit<Probe, 'method'>): Probe =>
    goodBody === undefined || p.payload !== undefined ? { method, ...p } : { method, ...p, headers: { 'content-type': 'application/json', ...p.headers }, payload: goodBody };

  for (const p of pathParams) {
    for (const v of PATH_VALUES) out.push(withBody({ url: fillPath(template, { [p.name]: v }), label: `path ${p.name}=${v.slice(0, 20)}` }));
  }
  for (const p of queryParams) {
    for (const v of QUERY_VALUES) out.push(withBody({ url: `${base}?${p.name}=${v}`, label: `query ${p.name}=${v.slice(0, 20)}` }));
    out.push(withBody({ url: `${base}?${p.name}=1&${p.name}=2`, label: `query ${p.name} repeated` }));
    out.push(withBody({ url: `${base}?${p.name}[]=1`, label: `query ${p.name}[]` }));
  }
  if (jsonSchema !== undefined) {
    const good = sample(jsonSchema);
    if (good !== null && typeof good === 'object' && !Array.isArray(good)) {
      for (const field of Object.keys(good)) {
        for (const v of FIELD_VALUES) {
          out.push({ method, url: base, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...good, [field]: v }), label: `body ${field}=${JSON.stringify(v).slice(0, 20)}` });
        }
      }
    }
  }
  if (method !== 'GET' && method !== 'DELETE') {
    for (const b of JUNK_BODIES) out.push({ method, url: base, headers: { 'content-type': 'application/json' }, payload: b, label: `json ${b.slice(0, 20)}` });
    const ctypes: Record<string, string> = {
      'multipart without boundary': 'multipart/form-data',
      'multipart truncated': 'multipart/form-data; boundary=XyZ',
      'multipart empty boundary': 'multipart/form-data; boundary=',
      'multipart long boundary': `multipart/form-data; boundary=${'b'.repeat(300)}`,
      xml: 'application/xml',
      'text/plain': 'text/plain',
      'csv junk': 'text/csv',
      'octet junk': 'application/octet-stream',
      'bad header': 'application/json; charset=nope',
    };
    const truncated = '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n3';
    for (const [label, ct] of Object.entries(ctypes)) {
      out.push({ method, url: base, headers: { 'content-type': ct }, payload: label.startsWith('multipart') ? truncated : '\u0000\u0001garbage,"\n"', label });
    }
  }
  return out;
}

async function seed(t: TestApp): Promise<void> {
  const h = t.headers('admin');
  const mp = multipart({}, { bytes: classifierOnnx() });
  const up = await t.app.inject({ method: 'POST', url: '/models/fz/versions', headers: { ...h, ...mp.headers }, payload: mp.payload });
  assert.equal(up.statusCode, 201, up.body);
  const ds = await t.app.inject({ method: 'POST', url: '/datasets/fz', headers: { ...h, 'content-type': 'text/csv' }, payload: 'a,b,y\n1,2,no\n3,4,yes\n5,6,no\n7,8,yes\n' });
  assert.equal(ds.statusCode, 201, ds.body);
  const ex = await t.app.inject({ method: 'POST', url: '/experiments', headers: h, payload: { name: 'fz' } });
  assert.equal(ex.statusCode, 201, ex.body);
}

describe('fuzz: every OpenAPI operation with hostile input', { timeout: 1_200_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PER_MINUTE: '0' } });
    await seed(t);
  });
  after(async () => {
    await t?.close();
  });

  it('answers every probe with a non-5xx status within its deadline', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, Record<string, Operation>> }>();
    const auth = t.headers('admin');
    const counts = new Map<number, number>();
    const failures: string[] = [];
    let total = 0;
    // Deletions last, so that the others meet the seeded resources.
    const ops = Object.entries(doc.paths)
      .flatMap(([p, byMethod]) => Object.entries(byMethod).map(([m, op]) => ({ method: m.toUpperCase(), path: p, op })))
      .sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
    for (const { method, path, op } of ops) {
      for (const probe of probes(method, path, op)) {
        total += 1;
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<'hang'>((resolve) => {
          timer = setTimeout(() => resolve('hang'), HANG_MS);
        });
        const res = await Promise.race([
          t.app.inject({ method: probe.method as 'GET', url: probe.url, headers: { ...auth, ...probe.headers }, ...(probe.payload === undefined ? {} : { payload: probe.payload }) }),
          deadline,
        ]);
        clearTimeout(timer);
        if (res === 'hang') {
          failures.push(`HANG ${method} ${path} [${probe.label}]`);
          continue;
        }
        counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500 && res.statusCode !== 503) failures.push(`${res.statusCode} ${method} ${path} [${probe.label}] ${res.body.slice(0, 160)}`);
      }
    }
    const byStatus = [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(`fuzz: ${ops.length} operations, ${total} requests; by status ${byStatus}; failures ${failures.length}`);
    for (const f of failures) console.log(`  ${f}`);
    assert.deepEqual(failures, []);
  });
});
