import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../src/platform/errors.ts';
import { EXPERIMENT_SEARCH, RUN_SEARCH, parseFilter, parseOrderBy } from '../../src/tracking/search-filter.ts';

function parseError(filter: string): AppError {
  try {
    parseFilter(filter, RUN_SEARCH);
  } catch (err) {
    assert.ok(err instanceof AppError, `expected AppError for ${filter}`);
    return err;
  }
  assert.fail(`filter ${JSON.stringify(filter)} should not parse`);
}

void describe('parseFilter', () => {
  void test('empty and blank filters give no comparisons', () => {
    assert.deepEqual(parseFilter(undefined), []);
    assert.deepEqual(parseFilter('   '), []);
  });

  void test('comparisons joined by AND in any case, keys split at the first dot', () => {
    const out = parseFilter("metrics.accuracy > 0.9 and params.max_depth = '8' AnD tags.mlflow.runName LIKE 'rf%'");
    assert.deepEqual(out, [
      { identifier: { type: 'metric', key: 'accuracy' }, operator: '>', value: { kind: 'number', value: 0.9 } },
      { identifier: { type: 'param', key: 'max_depth' }, operator: '=', value: { kind: 'string', value: '8' } },
      { identifier: { type: 'tag', key: 'mlflow.runName' }, operator: 'LIKE', value: { kind: 'string', value: 'rf%' } },
    ]);
  });

  void test('quoted and backquoted keys, entity aliases, double-quoted values and doubled quotes', () => {
    const [a, b, c, d] = parseFilter("metrics.`my metric` >= -1.5e2 AND param.\"my param\" != \"x\" AND tag.t = 'it''s' AND metric.m<=3");
    assert.deepEqual(a, { identifier: { type: 'metric', key: 'my metric' }, operator: '>=', value: { kind: 'number', value: -150 } });
    assert.deepEqual(b, { identifier: { type: 'param', key: 'my param' }, operator: '!=', value: { kind: 'string', value: 'x' } });
    assert.deepEqual(c, { identifier: { type: 'tag', key: 't' }, operator: '=', value: { kind: 'string', value: "it's" } });
    assert.deepEqual(d, { identifier: { type: 'metric', key: 'm' }, operator: '<=', value: { kind: 'number', value: 3 } });
  });

  void test('attributes bare, prefixed, aliased and backquoted', () => {
    const out = parseFilter("status = 'FINISHED' and attributes.run_name ILIKE '%Fox%' and attr.start_time > 5 and created < 9 and `Run name` = 'x' and run.user_id != ''");
    assert.deepEqual(
      out.map((c) => c.identifier),
      [
        { type: 'attribute', key: 'status' },
        { type: 'attribute', key: 'run_name' },
        { type: 'attribute', key: 'start_time' },
        { type: 'attribute', key: 'start_time' },
        { type: 'attribute', key: 'run_name' },
        { type: 'attribute', key: 'user_id' },
      ],
    );
  });

  void test('IN, NOT IN, IS NULL, IS NOT NULL and datasets', () => {
    const out = parseFilter("run_id IN ('a', 'b') AND status not in ('FAILED') AND end_time IS NULL AND params.x is not null AND datasets.name = 'iris' AND datasets.version >= 2");
    assert.deepEqual(
      out.map((c) => [c.operator, c.value]),
      [
        ['IN', { kind: 'list', values: ['a', 'b'] }],
        ['NOT IN', { kind: 'list', values: ['FAILED'] }],
        ['IS NULL', { kind: 'none' }],
        ['IS NOT NULL', { kind: 'none' }],
        ['=', { kind: 'string', value: 'iris' }],
        ['>=', { kind: 'number', value: 2 }],
      ],
    );
  });

  const bad: [string, RegExp][] = [
    ["metrics.a > 1 OR metrics.b > 2", /character 15 .*'OR' is not supported/],
    ['metrics.a >', /at the end: expected a value/],
    ["params.x = 8", /params\.x is a string: quote the value/],
    ["metrics.a = 'x'", /metrics\.a is numeric: compare it with a number/],
    ["metrics.a LIKE '1%'", /numeric: use =, !=.*not LIKE/],
    ["params.x > 'a'", /is a string: use =, !=.*not >/],
    ["foo.bar = 'x'", /unknown entity 'foo'/],
    ["colour = 'red'", /unknown attribute 'colour'/],
    ["(metrics.a > 1)", /character 1 .*parentheses are not supported/],
    ["metrics.a > 1 metrics.b > 2", /character 15 .*expected AND between comparisons/],
    ["params.x = 'abc", /character 12 .*unterminated string/],
    ["metrics.a ! 1", /'!' must be followed by '='/],
    ["metrics.a # 1", /unexpected character '#'/],
    ["run_id IN 'a'", /expected '\(' to start the IN list/],
    ["run_id IN ('a' 'b')", /expected ',' or '\)' in the IN list/],
    ["run_id IN (1, 2)", /IN lists hold quoted strings/],
    ["start_time > 1.5", /holds integers/],
    ["metrics.a > 1 AND", /'AND' must be followed by a comparison/],
    ["metrics. > 1", /needs a key after the dot/],
    ['status = FINISHED', /expected a value, found 'FINISHED' \(quote strings/],
    ["metrics.a IS 3", /expected NULL after IS/],
  ];
  for (const [filter, message] of bad) {
    void test(`refuses ${JSON.stringify(filter)} with a 400 naming the problem`, () => {
      const err = parseError(filter);
      assert.equal(err.status, 400);
      assert.equal(err.code, 'invalid_parameter_value');
      assert.match(err.message, message);
      assert.match(err.message, /^invalid filter /);
    });
  }

  void test('experiments accept name, times and tags but not metrics', () => {
    assert.equal(parseFilter("name LIKE 'a%' and tags.team = 'x' and creation_time > 0", EXPERIMENT_SEARCH).length, 3);
    assert.throws(() => parseFilter('metrics.a > 1', EXPERIMENT_SEARCH), /experiments cannot be searched by metrics/);
    assert.throws(() => parseFilter("status = 'x'", EXPERIMENT_SEARCH), /unknown attribute 'status'/);
  });
});

void describe('parseOrderBy', () => {
  void test('clauses with directions, several per string, quoted keys with commas', () => {
    assert.deepEqual(parseOrderBy(['metrics.accuracy DESC', 'params.`a,b` asc, start_time']), [
      { identifier: { type: 'metric', key: 'accuracy' }, ascending: false },
      { identifier: { type: 'param', key: 'a,b' }, ascending: true },
      { identifier: { type: 'attribute', key: 'start_time' }, ascending: true },
    ]);
    assert.deepEqual(parseOrderBy(undefined), []);
  });

  void test('bad clauses are 400s', () => {
    assert.throws(() => parseOrderBy(['metrics.a DOWN']), /invalid order_by .*expected ASC, DESC/);
    assert.throws(() => parseOrderBy(['metrics.a,,b']), /empty clause/);
    assert.throws(() => parseOrderBy(["datasets.name"]), /cannot be used in order_by/);
  });
});
