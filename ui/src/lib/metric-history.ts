import { api, unwrap } from '../api/client.ts';
import type { Series } from '../components/line-chart.tsx';

/** Most points of one metric read for a chart (10 pages of 1000). */
const MAX_PAGES = 10;

/** The full history of one metric of a run, as chart points over steps (non-finite values skipped). */
export async function metricSeries(experiment: string, runId: string, key: string, label: string, signal: AbortSignal): Promise<Series> {
  const points: { x: number; y: number | null }[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = await unwrap(
      api.GET('/experiments/{name}/runs/{run_id}/metrics/{key}', {
        params: { path: { name: experiment, run_id: runId, key }, query: { limit: 1000, ...(token === undefined ? {} : { page_token: token }) } },
        signal,
      }),
    );
    for (const p of body.history) points.push({ x: p.step, y: typeof p.value === 'number' ? p.value : null });
    token = body.next_page_token;
    if (token === undefined) break;
  }
  // Several values at one step (re-logged): the last one counts, as MLflow's chart shows.
  const byStep = new Map<number, number | null>();
  for (const p of points) byStep.set(p.x, p.y);
  return { label, points: [...byStep.entries()].map(([x, y]) => ({ x, y })) };
}
