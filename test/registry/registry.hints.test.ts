import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../src/platform/errors.ts';
import { parseDatasetRef, parseTags, parseUploadFields } from '../../src/registry/registry.hints.ts';
import { checkAliasName, checkModelName, reservedAlias, roleForTransition } from '../../src/registry/registry.model.ts';

const fails400 = (fn: () => unknown, path?: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof AppError && err.status === 400 && (path === undefined || path.test(err.errors?.[0]?.path ?? '')));

describe('upload fields', () => {
  test('feature names as a JSON array or a comma-separated list', () => {
    assert.deepEqual(parseUploadFields({ feature_names: '["a b", "c"]' }, '/body').hints.featureNames, ['a b', 'c']);
    assert.deepEqual(parseUploadFields({ feature_names: 'x, y ,z' }, '/body').hints.featureNames, ['x', 'y', 'z']);
    assert.deepEqual(parseUploadFields({ feature_names: ['p', 'q'] }, '/body').hints.featureNames, ['p', 'q']);
    fails400(() => parseUploadFields({ feature_names: '[1, 2]' }, '/body'), /^\/body\/feature_names$/);
    fails400(() => parseUploadFields({ feature_names: 'a,,b' }, '/body'));
  });

  test('class labels keep their JSON types; a comma list of integers means integer labels', () => {
    assert.deepEqual(parseUploadFields({ class_labels: '0,1,2' }, '/b').hints.classLabels, [0, 1, 2]);
    assert.deepEqual(parseUploadFields({ class_labels: '["0","1"]' }, '/b').hints.classLabels, ['0', '1']);
    assert.deepEqual(parseUploadFields({ class_labels: 'setosa,versicolor' }, '/b').hints.classLabels, ['setosa', 'versicolor']);
    fails400(() => parseUploadFields({ class_labels: '[]' }, '/b'));
  });

  test('task, run id, description, tags, unknown fields', () => {
    const f = parseUploadFields({ task: 'regression', run_id: 'abc-1', description: 'd', tags: '{"n": 1}' }, '/b');
    assert.equal(f.hints.task, 'regression');
    assert.equal(f.runId, 'abc-1');
    assert.equal(f.description, 'd');
    assert.deepEqual(f.tags, { n: '1' });
    fails400(() => parseUploadFields({ task: 'clustering' }, '/b'), /task/);
    fails400(() => parseUploadFields({ run_id: '../x' }, '/b'), /run_id/);
    fails400(() => parseUploadFields({ featurenames: 'a' }, '/querystring'), /^\/querystring\/featurenames$/);
    assert.deepEqual(parseUploadFields({ task: '', description: undefined }, '/b'), { hints: {} });
  });

  test('dataset references', () => {
    assert.deepEqual(parseDatasetRef('iris', '/p'), { name: 'iris', version: null });
    assert.deepEqual(parseDatasetRef('iris:3', '/p'), { name: 'iris', version: 3 });
    assert.deepEqual(parseDatasetRef('iris@12', '/p'), { name: 'iris', version: 12 });
    assert.deepEqual(parseDatasetRef('{"name":"wine","version":2}', '/p'), { name: 'wine', version: 2 });
    fails400(() => parseDatasetRef({ name: 'x', version: 0 }, '/p'));
    fails400(() => parseDatasetRef(5, '/p'));
  });

  test('tags must be flat string values', () => {
    assert.deepEqual(parseTags({ a: 'x', b: true }, '/t'), { a: 'x', b: 'true' });
    fails400(() => parseTags({ a: { nested: 1 } }, '/t'), /^\/t\/a$/);
    fails400(() => parseTags(['a'], '/t'));
  });
});

describe('registry naming and permission rules', () => {
  test('alias names follow MLflow', () => {
    for (const ok of ['champion', 'prod_2', 'a-b', 'v', 'version2', 'v1a']) assert.equal(checkAliasName(ok), ok);
    for (const bad of ['latest', 'Latest', 'v1', 'V42', 'a.b', 'with space', '', 'x'.repeat(256)]) fails400(() => checkAliasName(bad));
    assert.deepEqual(reservedAlias('LATEST'), { kind: 'latest' });
    assert.deepEqual(reservedAlias('v7'), { kind: 'version', version: 7 });
    assert.equal(reservedAlias('champion'), undefined);
  });

  test('model names are safe in URLs and artifact keys', () => {
    for (const ok of ['iris', 'my model', 'a.b-c_d', '_x', '9lives']) assert.equal(checkModelName(ok), ok);
    for (const bad of ['', '..', '.hidden', 'a/b', 'a\\b', ' lead', 'trail ', 'x'.repeat(201), 'semi;colon']) fails400(() => checkModelName(bad));
  });

  test('Production and Archived need admin, and so does leaving Production', () => {
    assert.equal(roleForTransition('None', 'Staging'), 'train');
    assert.equal(roleForTransition('Staging', 'None'), 'train');
    assert.equal(roleForTransition('Archived', 'Staging'), 'train');
    assert.equal(roleForTransition('Staging', 'Production'), 'admin');
    assert.equal(roleForTransition('None', 'Archived'), 'admin');
    assert.equal(roleForTransition('Production', 'Staging'), 'admin');
  });
});
