/**
 * Line chart over steps (metric curves, request rates) drawn with uPlot. Several series share the
 * x axis (the union of their x values), so curves of different runs overlay. The legend is plain
 * HTML, and the figure has a text label, so the chart is not only pixels.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  readonly label: string;
  readonly points: readonly { readonly x: number; readonly y: number | null }[];
}

/** Colours with at least 4.5:1 contrast on white, distinct for up to eight series. */
export const PALETTE = ['#1d4ed8', '#b45309', '#047857', '#b91c1c', '#6d28d9', '#0f766e', '#a21caf', '#374151'];

export function LineChart({
  title,
  series,
  xLabel,
  height = 220,
  xIsTime = false,
  formatY,
}: {
  readonly title: string;
  readonly series: readonly Series[];
  readonly xLabel: string;
  readonly height?: number;
  readonly xIsTime?: boolean;
  readonly formatY?: (v: number) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  // The chart is rebuilt only when its series or axes change; new points (a live refresh) only
  // replace its data, so a refreshing chart does not flicker.
  const shape = JSON.stringify([series.map((s) => s.label), xLabel, height, xIsTime]);

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: xIsTime } },
      axes: [
        { label: xLabel, stroke: '#374151', grid: { stroke: '#e5e7eb' } },
        {
          stroke: '#374151',
          grid: { stroke: '#e5e7eb' },
          size: 60,
          ...(formatY === undefined ? {} : { values: (_u: uPlot, vals: number[]) => vals.map((v) => formatY(v)) }),
        },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: true,
          points: { show: s.points.length < 30 },
        })),
      ],
    };
    const created = new uPlot(opts, aligned(series), el);
    plot.current = created;
    const observer = new ResizeObserver(() => created.setSize({ width: Math.max(240, el.clientWidth), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      created.destroy();
      plot.current = undefined;
    };
    // Rebuilt on a change of shape only; data changes are applied below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(aligned(series));
  }, [series]);

  const summary = series.map((s) => `${s.label}: ${s.points.length} point${s.points.length === 1 ? '' : 's'}`).join('; ');
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} className="chart-canvas" role="img" aria-label={`${title}. ${summary}`} />
      {series.length > 0 && (
        <ul className="legend" aria-label={`${title} legend`}>
          {series.map((s, i) => (
            <li key={s.label}>
              <span className="swatch" data-color={i % PALETTE.length} aria-hidden="true" />
              {s.label}
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}

/** uPlot's data: the union of the x values, and each series' y at them (null where it has none). */
function aligned(series: readonly Series[]): uPlot.AlignedData {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const col: (number | null)[] = new Array<number | null>(xs.length).fill(null);
    for (const p of s.points) col[index.get(p.x)!] = p.y;
    return col;
  });
  return [xs, ...ys] as uPlot.AlignedData;
}
