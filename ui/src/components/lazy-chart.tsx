/** The line chart, loaded with uPlot only when a page first draws one. */
import { lazy, Suspense, type ComponentProps } from 'react';

const Chart = lazy(async () => ({ default: (await import('./line-chart.tsx')).LineChart }));

export function LazyLineChart(props: ComponentProps<typeof Chart>) {
  return (
    <Suspense fallback={<div className="chart-placeholder">Loading chart…</div>}>
      <Chart {...props} />
    </Suspense>
  );
}
