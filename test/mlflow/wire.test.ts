/**
 * The MLflow wire helpers on their own: error translation and rendering, number and enum reading,
 * the reply's empty-field rule, and the registry search (filter, LIKE, order, paging).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REGISTERED_MODEL_SEARCH, searchItems, type Searchable } from '../../src/mlflow/registry-search.ts';
import { opt, renderMlflowError, toDouble, toInt, toMlflowError, wireDouble } from '../../src/mlflow/wire.ts';
import { AppError, conflict, notFound, unauthorized } from '../../src/platform/errors.ts';

describe('MLflow wire rules', { timeout: 60_000 }, () => {
  test('service errors take MLflow codes and statuses', () => {
    const check = (err: AppError, conflictCode: 'RESOURCE_ALREADY_EXISTS' | 'RESOURCE_CONFLICT' | undefined, status: number, code: string) => {
      const out = toMlflowError(err, conflictCode) as AppError;
      assert.equal(out.status, status);
      assert.deepEqual(renderMlflowError(out), { error_code: code, message: err.message });
    };
    check(new AppError(400, 'validation_error', 'bad'), undefined, 400, 'INVALID_PARAMETER_VALUE');
    check(conflict('taken'), undefined, 400, 'RESOURCE_ALREADY_EXISTS');
    check(conflict('serving'), 'RESOURCE_CONFLICT', 409, 'RESOURCE_CONFLICT');
    check(notFound('gone'), undefined, 404, 'RESOURCE_DOES_NOT_EXIST');
    check(unauthorized(), undefined, 401, 'UNAUTHENTICATED');
    check(new AppError(403, 'forbidden', 'no'), undefined, 403, 'PERMISSION_DENIED');
    check(new AppError(429, 'rate_limited', 'slow down'), undefined, 429, 'REQUEST_LIMIT_EXCEEDED');
    check(new AppError(503, 'service_unavailable', 'later'), undefined, 503, 'TEMPORARILY_UNAVAILABLE');
    const unexpected = new Error('boom');
    assert.equal(toMlflowError(unexpected), unexpected, 'unknown errors go on to the one handler (logged 500)');
    assert.deepEqual(renderMlflowError(new AppError(500, 'internal_error', 'x')), { error_code: 'INTERNAL_ERROR', message: 'x' });
    assert.equal(renderMlflowError(new AppError(404, 'not_found', 'no route')).error_code, 'ENDPOINT_NOT_FOUND');
  });

  test('int64 as numbers or strings, doubles with NaN and infinities as protobuf writes them', () => {
    assert.equal(toInt('t', '1700000000000'), 1_700_000_000_000);
    assert.equal(toInt('t', 5), 5);
    assert.throws(() => toInt('t', '1.5'), /expected an integer/);
    assert.throws(() => toInt('t', '99999999999999999999'), /expected an integer/);
    assert.ok(Number.isNaN(toDouble('v', 'NaN')));
    assert.equal(toDouble('v', '-Infinity'), Number.NEGATIVE_INFINITY);
    assert.equal(toDouble('v', '0.25'), 0.25);
    assert.throws(() => toDouble('v', 'abc'), /expected a number/);
    assert.deepEqual([wireDouble(Number.NaN), wireDouble(Number.POSITIVE_INFINITY), wireDouble(-Infinity), wireDouble(1.5)], ['NaN', 'Infinity', '-Infinity', 1.5]);
  });

  test('empty fields are left out, zeros and false are kept', () => {
    assert.deepEqual([opt(null), opt(''), opt([]), opt(0), opt(false), opt('x')], [undefined, undefined, undefined, 0, false, 'x']);
  });

  test('registry search: LIKE and ILIKE, tags, order with missing values last, paging', () => {
    const item = (name: string, updated: number, tags: Record<string, string> = {}): Searchable & { name: string } => ({
      name,
      tags,
      attribute: (a) => (a === 'name' ? name : a === 'last_updated_timestamp' ? updated : null),
    });
    const items = [item('fraud_a', 3, { team: 'risk' }), item('Fraud-B', 1), item('churn', 2, { team: 'growth' }), item('fraud%c', 4)];
    const names = (filter: string | undefined, orderBy: string[] = [], maxResults?: number, pageToken?: string) =>
      searchItems(items, { filter, orderBy, maxResults, pageToken }, REGISTERED_MODEL_SEARCH, { defaultMax: 100, max: 1000, defaultOrder: ['name ASC'] });
    assert.deepEqual(names("name LIKE 'fraud%'").items.map((i) => i.name), ['fraud%c', 'fraud_a']);
    assert.deepEqual(names("name ILIKE 'fraud%'").items.map((i) => i.name), ['Fraud-B', 'fraud%c', 'fraud_a']);
    assert.deepEqual(names("name LIKE 'fraud_a'").items.map((i) => i.name), ['fraud_a'], '_ matches one character');
    assert.deepEqual(names("tags.team = 'risk'").items.map((i) => i.name), ['fraud_a']);
    assert.deepEqual(names(undefined, ['tags.team DESC']).items.map((i) => i.name), ['fraud_a', 'churn', 'Fraud-B', 'fraud%c']);
    assert.deepEqual(names(undefined, ['timestamp DESC']).items.map((i) => i.name), ['fraud%c', 'fraud_a', 'churn', 'Fraud-B']);
    const first = names(undefined, [], 3);
    assert.equal(first.items.length, 3);
    assert.deepEqual(names(undefined, [], 3, first.nextPageToken).items.map((i) => i.name), ['fraud_a']);
    assert.throws(() => names("metrics.x > 1"), /cannot be searched by metrics/);
    assert.throws(() => names(undefined, [], 1001), /max_results/);
  });
});
