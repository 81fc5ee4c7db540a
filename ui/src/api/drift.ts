/**
 * The drift routes (API.md "Drift") through the typed client: the report over the latest window
 * of logged predictions, and the reports the periodic check stored.
 */
import { api, unwrap } from './client.ts';
import type { DriftHistory, DriftReport } from '../lib/drift-report.ts';

/** Past reports the history chart and table show (the route's page size). */
const HISTORY_LIMIT = 100;

/** The report over a model's logged predictions: its `window` latest rows, or the server's default. */
export function driftReport(model: string, window: number | undefined, signal: AbortSignal): Promise<DriftReport> {
  return unwrap(api.GET('/drift/{model}', { params: { path: { model }, query: window === undefined ? {} : { window } }, signal }));
}

/** The newest stored reports of a model, newest first. */
export function driftHistory(model: string, signal: AbortSignal): Promise<DriftHistory> {
  return unwrap(api.GET('/drift/{model}/history', { params: { path: { model }, query: { limit: HISTORY_LIMIT } }, signal }));
}
