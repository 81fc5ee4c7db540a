/**
 * Chromium for the UI's end-to-end tests: Debian's package (`apt-get install chromium`) driven by
 * playwright-core, never a browser downloaded by a test tool. In CI (`CI=true`) a missing browser or
 * UI build is a failure; elsewhere the tests are skipped with a message saying what is missing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);

export const UI_DIST = path.resolve(import.meta.dirname, '../../ui/dist');
export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../../test-artifacts/ui');

const CANDIDATES = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * Why the UI tests cannot run here, or `undefined` when they can. Throws in CI, where `.ci/run`
 * installs Chromium and builds the UI first.
 */
export function uiTestsUnavailable(): string | undefined {
  const browser = CANDIDATES.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
  let missing: string | undefined;
  if (browser === undefined) missing = 'Chromium not found (apt-get install chromium, or set CHROMIUM_PATH)';
  else if (!existsSync(path.join(UI_DIST, 'index.html'))) missing = 'the UI is not built (npm run build:ui)';
  if (missing === undefined) return undefined;
  if (process.env['CI'] === 'true') throw new Error(`${missing}; both are required in CI`);
  return `${missing}: UI end-to-end tests skipped`;
}

/** Flags for Chromium as root in a container on a machine with no outside network. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** A headless Chromium with a fresh profile (playwright makes a new user data dir per launch). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = CANDIDATES.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
  if (executablePath === undefined) throw new Error('Chromium not found');
  return chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 120_000 });
}

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: readonly { target: unknown; failureSummary?: string }[];
}

/**
 * Runs axe-core in the page. Injected through the DevTools protocol rather than a script tag, so
 * the page's Content-Security-Policy (no inline scripts) stays as the server sends it.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const injected = await page.evaluate(`typeof globalThis.axe !== 'undefined'`);
  if (injected !== true) await page.evaluate(AXE_SOURCE);
  // A string, evaluated in the page (this file is not compiled with the DOM's types).
  return page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })))`);
}

export function describeViolations(violations: readonly AxeViolation[]): string {
  return violations
    .map((v) => `${v.id} (${v.impact ?? 'n/a'}): ${v.help}\n${v.nodes.slice(0, 5).map((n) => `    ${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`).join('\n')}`)
    .join('\n');
}
