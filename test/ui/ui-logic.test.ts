/**
 * The dashboard's pure logic, run by node against the server's own pieces where they exist:
 * Prometheus parsing and quantiles on the server's real `/metrics`, the live-traffic sentences of
 * the registry's confirmations, the params form read from `GET /train/algorithms`, histograms from
 * dataset statistics, and what the drift page shows of reports built by the server's drift tests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { histogramOf } from '../../ui/src/lib/column-stats.ts';
import { decisionOf, distributionBins, driftedFeatures, historyPoints, MAX_WINDOW, methodName, readWindow, referenceOf, summaryOf, windowOf, type DriftReport } from '../../ui/src/lib/drift-report.ts';
import { aliasImpact, describeDefaultRoute, roleForTransition, splitImpact, transitionImpact, type ModelDetail } from '../../ui/src/lib/live-traffic.ts';
import { describeParam, parseParam } from '../../ui/src/lib/param-schema.ts';
import { bucketDelta, bucketsBy, histogramQuantile, parseMetrics, rateBy, sumBy } from '../../ui/src/lib/prometheus.ts';
import { roleAllows } from '../../ui/src/lib/roles.ts';
import { roleForTransition as serverRoleForTransition } from '../../src/registry/registry.model.ts';
import { compareFeatures, type DriftReference, type FeatureSummaryReport, type LiveColumn } from '../../src/drift/report.ts';
import { MAX_WINDOW as SERVER_MAX_WINDOW } from '../../src/drift/drift.service.ts';
import { categoricalReference, numericReference } from '../../src/training/pipeline-reference.ts';
import { buildTestApp, type TestApp } from '../helper.ts';

describe('UI logic', { timeout: 120_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t.close();
  });

  test('Prometheus text: samples, sums by label, rates between scrapes, histogram quantiles', async () => {
    const text = [
      '# HELP prediction_requests_total x',
      '# TYPE prediction_requests_total counter',
      'prediction_requests_total{endpoint="/predict"} 10',
      'prediction_requests_total{endpoint="/models/:name/predict"} 4',
      'prediction_latency_seconds_bucket{endpoint="/predict",le="0.001"} 5',
      'prediction_latency_seconds_bucket{endpoint="/predict",le="0.01"} 9',
      'prediction_latency_seconds_bucket{endpoint="/predict",le="+Inf"} 10',
      'model_status{model="a \\"quoted\\" name",version="2"} 1',
    ].join('\n');
    const older = parseMetrics(text, 0);
    const newer = parseMetrics(text.replace('} 10\n', '} 30\n').replace('le="+Inf"} 10', 'le="+Inf"} 30').replace('le="0.01"} 9', 'le="0.01"} 29'), 10_000);
    assert.equal(sumBy(older, 'prediction_requests_total').get(''), 14);
    assert.equal(older.samples.find((s) => s.name === 'model_status')?.labels['model'], 'a "quoted" name');
    assert.equal(rateBy(older, newer, 'prediction_requests_total', 'endpoint').get('/predict'), 2);
    const buckets = bucketsBy(older, 'prediction_latency_seconds', 'endpoint').get('/predict')!;
    assert.equal(histogramQuantile(0.5, buckets), 0.001);
    assert.ok(Math.abs(histogramQuantile(0.7, buckets)! - (0.001 + 0.009 * (2 / 4))) < 1e-12);
    const delta = bucketDelta(buckets, bucketsBy(newer, 'prediction_latency_seconds', 'endpoint').get('/predict')!);
    assert.deepEqual([...delta.values()], [0, 20, 20]);
    assert.equal(histogramQuantile(0.5, new Map([[0.1, 0]])), undefined);
  });

  test('the server’s own /metrics parses: counters by endpoint and the latency histogram after predictions', async () => {
    const res = await t.app.inject({ url: '/metrics' });
    const scrape = parseMetrics(res.body, Date.now());
    assert.ok(scrape.samples.length > 10);
    assert.ok(scrape.samples.some((s) => s.name === 'api_uptime_seconds'));
    for (const [, buckets] of bucketsBy(scrape, 'prediction_latency_seconds', 'endpoint')) assert.ok(buckets.has(Infinity));
  });

  const model = (versions: [number, string][], split: ModelDetail['traffic'] = null, aliases: Record<string, number> = {}): ModelDetail =>
    ({
      name: 'm',
      description: null,
      tags: {},
      latest_version: versions.length,
      latest_versions: [],
      aliases,
      created_at: '',
      updated_at: '',
      versions: versions.map(([version, stage]) => ({ version, stage })),
      traffic: split,
    }) as unknown as ModelDetail;

  test('stage moves: what the default route and stage= requests serve before and after', () => {
    const m = model([
      [1, 'Production'],
      [2, 'Staging'],
      [3, 'None'],
    ]);
    const promote = transitionImpact(m, 2, 'Production', true).join('\n');
    assert.match(promote, /Version 2 moves from Staging to Production/);
    assert.match(promote, /Archived with it: version 1/);
    assert.match(promote, /moves from version 1 \(Production\) to version 2 \(Production\)/);
    assert.match(promote, /stage=Staging go to no version/);
    // Without archiving, the highest Production version serves: still version 2.
    assert.match(transitionImpact(m, 2, 'Production', false).join('\n'), /to version 2 \(Production\)/);
    // Leaving Production falls back to Staging.
    assert.match(transitionImpact(m, 1, 'Archived', false).join('\n'), /to version 2 \(Staging, the fallback/);
    // A staging move of an unrelated version leaves live traffic alone.
    assert.match(transitionImpact(m, 3, 'Staging', false).join('\n'), /does not change: it stays on version 1 \(Production\)/);
    const split = { name: 'm', routes: [{ version: 1, weight: 90 }, { version: 3, weight: 10 }], shadow: [], updated_at: null, updated_by: null };
    assert.match(transitionImpact(model([[1, 'Production'], [2, 'None'], [3, 'None']], split), 2, 'Production', false).join('\n'), /does not change: it stays on the traffic split \(version 1 90 %, version 3 10 %\)/);
    assert.equal(describeDefaultRoute(new Map([[1, 'Archived']]), null), 'nothing: requests get 503 (no version in Production or Staging)');
  });

  test('aliases and splits: the sentences of their confirmations', () => {
    const m = model([[1, 'Production'], [2, 'None']], null, { champion: 1 });
    assert.match(aliasImpact(m, 'champion', 2).join('\n'), /moves from version 1 to version 2/);
    assert.match(aliasImpact(m, 'new', 2).join('\n'), /is created on version 2/);
    assert.match(aliasImpact(m, 'champion', null).join('\n'), /will get 404/);
    const lines = splitImpact(m, { routes: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }], shadow: [2] }).join('\n');
    assert.match(lines, /moves from version 1 \(Production\) to the traffic split \(version 1 50 %, version 2 50 %\), shadowed by version 2/);
    assert.match(lines, /Shadow versions \(2\) get a copy/);
    assert.match(splitImpact(m, { routes: [], shadow: [] }).join('\n'), /The split is cleared/);
  });

  test('the UI’s role rules match the server’s', () => {
    const stages = ['None', 'Staging', 'Production', 'Archived'] as const;
    for (const from of stages) for (const to of stages) assert.equal(roleForTransition(from, to), serverRoleForTransition(from, to), `${from} -> ${to}`);
    assert.ok(roleAllows('admin', 'train'));
    assert.ok(!roleAllows('predict', 'train'));
  });

  test('params fields from GET /train/algorithms: controls, ranges and parsed values', async () => {
    const res = await t.app.inject({ url: '/train/algorithms', headers: t.headers('read') });
    const algorithms = res.json().algorithms as { name: string; params_schema: { properties: Record<string, unknown> } }[];
    const props = (name: string) => algorithms.find((a) => a.name === name)!.params_schema.properties;
    const forest = props('random_forest');
    const trees = describeParam('n_estimators', forest['n_estimators']);
    assert.equal(trees.control, 'number');
    assert.deepEqual([trees.numeric?.min, trees.numeric?.max, trees.numeric?.integer], [1, 10_000, true]);
    assert.equal(parseParam(trees, '25'), 25);
    assert.equal(parseParam(trees, ''), undefined);
    const depth = describeParam('max_depth', forest['max_depth']);
    assert.equal(depth.control, 'text');
    assert.equal(parseParam(depth, 'null'), null);
    assert.equal(parseParam(depth, '7'), 7);
    const features = describeParam('max_features', forest['max_features']);
    assert.equal(parseParam(features, 'sqrt'), 'sqrt');
    assert.equal(parseParam(features, '0.5'), 0.5);
    const bootstrap = describeParam('bootstrap', forest['bootstrap']);
    assert.equal(bootstrap.control, 'choice');
    assert.deepEqual(bootstrap.choices, [true, false]);
    assert.equal(parseParam(bootstrap, 'false'), false);
    const criterion = describeParam('criterion', forest['criterion']);
    assert.deepEqual(criterion.choices, ['gini', 'entropy', 'squared_error']);
    assert.equal(parseParam(criterion, JSON.stringify('entropy')), 'entropy');
    const stopping = describeParam('early_stopping', props('gradient_boosting')['early_stopping']);
    assert.deepEqual(stopping.choices, ['auto', true, false]);
  });

  test('histograms from a dataset version’s statistics: exact counts where listed, quantile bins otherwise', async () => {
    const rows = ['x,small,label'];
    for (let i = 0; i < 200; i++) rows.push(`${i * 1.5},${i % 3},${['a', 'b'][i % 2]}`);
    const up = await t.app.inject({ method: 'POST', url: '/datasets/hist', headers: { ...t.headers('train'), 'content-type': 'text/csv' }, payload: rows.join('\n') });
    assert.equal(up.statusCode, 201, up.body);
    const columns = up.json().schema.columns as { name: string; type: string; stats: Record<string, unknown> }[];
    const col = (n: string) => columns.find((c) => c.name === n)!;
    const x = histogramOf(col('x').type, col('x').stats);
    assert.equal(x.exact, false);
    assert.equal(x.bins[0]!.start, 0);
    assert.equal(x.bins[x.bins.length - 1]!.end, 298.5);
    assert.ok(Math.abs(x.bins.reduce((s, b) => s + b.value, 0) - 200) < 1e-9, 'the bins hold every row');
    const small = histogramOf(col('small').type, col('small').stats);
    assert.equal(small.exact, true);
    assert.deepEqual(small.bins.map((b) => [b.label, b.value]), [['0', 67], ['1', 67], ['2', 66]]);
    const label = histogramOf(col('label').type, col('label').stats);
    assert.deepEqual(label.bins.map((b) => [b.label, b.value]), [['a', 100], ['b', 100]]);
  });

  test('drift reports: decisions, rules, bars and the summary of a report built by the server’s own tests', () => {
    // A reference of 300 rows (numeric f0 and x_gone, categorical colour) against 200 live rows
    // with f0 shifted by half its range and x_gone absent, tested by src/drift/report.ts.
    const n = 300;
    const colours = ['red', 'green', 'blue'];
    const reference: DriftReference = {
      rows: n,
      feature_names: ['f0', 'colour', 'x_gone'],
      features: {
        f0: numericReference(Float64Array.from({ length: n }, (_, i) => i / n)),
        colour: categoricalReference(Float64Array.from({ length: n }, (_, i) => i % 3), colours),
        x_gone: numericReference(Float64Array.from({ length: n }, (_, i) => (i * 7) % 11)),
      },
    };
    const live = new Map<string, LiveColumn>([
      ['f0', { type: 'numeric', values: Float64Array.from({ length: 200 }, (_, i) => 0.5 + i / 200) }],
      ['colour', { type: 'categorical', values: Array.from({ length: 200 }, (_, i) => colours[i % 3]!) }],
    ]);
    const asReport = (summary: FeatureSummaryReport): DriftReport => ({
      model: 'm',
      version: '1',
      computed_at: '2026-01-01T00:00:00.000Z',
      status: 'ok',
      window: { rows: 1000, source: 'log' },
      current_rows: 200,
      reference_rows: n,
      min_window: 100,
      share_threshold: 0.3,
      n_features: 3,
      ...summary,
      features: summary.features.map((f) => ({ ...f })),
      reference: { source: 'training', rows: n, dataset: null },
    });
    const report = asReport(compareFeatures(reference, live, 200, { shareThreshold: 0.3 }));
    const [f0, colour, gone] = report.features;
    assert.equal(methodName(f0!.method), 'Kolmogorov–Smirnov');
    assert.deepEqual(decisionOf(f0!), { label: 'drifted', drifted: true, rule: 'p < 0.05' });
    assert.equal(methodName(colour!.method), 'chi-square');
    assert.deepEqual(decisionOf(colour!), { label: 'no drift', drifted: false, rule: 'p < 0.05' });
    assert.deepEqual(decisionOf(gone!), { label: 'not tested (no live values)', drifted: false, rule: '—' });
    assert.equal(methodName(gone!.method), '—');
    assert.deepEqual(driftedFeatures(report), ['f0']);
    assert.equal(summaryOf(report), 'dataset drift detected: 1 of 3 features drifted (33.3%; dataset drift from 30%)');
    assert.equal(windowOf(report), 'latest 1000 logged predictions');
    assert.equal(referenceOf(report), '300 rows (training split)');
    assert.equal(referenceOf({ ...report, reference: { source: 'dataset', rows: 90, dataset: { name: 'flowers', version: 2 } } }), '90 rows (dataset flowers version 2)');
    assert.equal(referenceOf({ ...report, reference: { source: 'training', rows: 120, dataset: { name: 'iris', version: 1 } } }), '120 rows (training split of dataset iris version 1)');

    // Bars: one pair per reference bin, reference and live shares each summing to 1.
    const bins = distributionBins(f0!);
    assert.equal(bins.length, f0!.distribution.labels.length);
    assert.ok(Math.abs(bins.reduce((s, b) => s + b.value, 0) - 1) < 1e-3);
    assert.ok(Math.abs(bins.reduce((s, b) => s + (b.compare ?? 0), 0) - 1) < 1e-3);
    assert.deepEqual(distributionBins(colour!).map((b) => b.label).sort(), [...colours].sort());

    // PSI decides on the statistic, not on a p-value.
    const psi = asReport(compareFeatures(reference, live, 200, { shareThreshold: 0.3, method: 'psi' }));
    assert.equal(methodName(psi.features[0]!.method), 'PSI');
    assert.deepEqual(decisionOf(psi.features[0]!), { label: 'drifted', drifted: true, rule: 'statistic ≥ 0.1' });

    // Too small a window: the server's sentence.
    const small: DriftReport = { ...report, status: 'not_enough_data', message: 'not enough data: 40 row(s) in the window, at least 100 needed (DRIFT_MIN_WINDOW)', share_drifted: null, drifted_features: null, dataset_drift: null, features: [] };
    assert.match(summaryOf(small), /^not enough data: 40 row/);
    assert.equal(summaryOf({ ...report, dataset_drift: false, drifted_features: 0, share_drifted: 0 }), 'no dataset drift: 0 of 3 features drifted (0%; dataset drift from 30%)');

    // History: oldest first on the chart, a report without a test is a gap.
    const points = historyPoints([{ ...report, computed_at: '2026-01-01T02:00:00Z' }, { ...small, computed_at: '2026-01-01T01:00:00Z' }, { ...report, computed_at: '2026-01-01T00:00:00Z', share_drifted: 0 }]);
    assert.deepEqual(
      points.map((p) => p.y),
      [0, null, report.share_drifted],
    );
    assert.ok(points[0]!.x < points[1]!.x && points[1]!.x < points[2]!.x);

    // The window field.
    assert.deepEqual(readWindow(''), {});
    assert.deepEqual(readWindow(' 250 '), { window: 250 });
    assert.equal(MAX_WINDOW, SERVER_MAX_WINDOW, 'the window field allows what the route allows');
    for (const bad of ['0', '-5', '2.5', 'abc', String(MAX_WINDOW + 1)]) assert.match(readWindow(bad).invalid ?? '', /whole number of rows from 1 to 100000/, bad);
  });
});
