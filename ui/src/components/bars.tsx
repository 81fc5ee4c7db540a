/**
 * Bar charts in SVG: histograms of a column (bins with start and end) and counts of categories.
 * Bars may have different widths (bins between quantiles), so the height shows density.
 */
import { useId } from 'react';
import type { Bin } from '../lib/bins.ts';
import { formatNumber } from '../lib/format.ts';

export type { Bin };

const W = 320;
const H = 120;

export function Bars({ title, bins, note, compareLabels }: { readonly title: string; readonly bins: readonly Bin[]; readonly note?: string; readonly compareLabels?: readonly [string, string] }) {
  const id = useId();
  if (bins.length === 0) return null;
  const ranged = bins.every((b) => b.start !== undefined && b.end !== undefined && b.end > b.start);
  const lo = ranged ? bins[0]!.start! : 0;
  const hi = ranged ? bins[bins.length - 1]!.end! : bins.length;
  const span = hi - lo || 1;
  // Density when widths differ, so a wide bin is not drawn as if it held more rows.
  const heightOf = (b: Bin, v: number) => (ranged ? v / (b.end! - b.start!) : v);
  // The outermost quantile bins (min to p01, p99 to max) can be very narrow, so their density
  // would flatten every other bar: the scale ignores them and they are clipped at the top.
  const scaled = ranged && bins.length > 4 ? bins.slice(1, -1) : bins;
  const max = Math.max(...scaled.flatMap((b) => [heightOf(b, b.value), b.compare === undefined ? 0 : heightOf(b, b.compare)]), 1e-12);
  const summary = bins
    .slice(0, 12)
    .map((b) => `${b.label}: ${formatNumber(b.value)}${b.compare === undefined ? '' : ` / ${formatNumber(b.compare)}`}`)
    .join(', ');
  return (
    <figure className="bars">
      <svg viewBox={`0 0 ${W} ${H + 1}`} role="img" aria-labelledby={`${id}-t`} preserveAspectRatio="none">
        <title id={`${id}-t`}>{`${title}. ${summary}${bins.length > 12 ? ', …' : ''}`}</title>
        {bins.map((b, i) => {
          const x0 = ranged ? ((b.start! - lo) / span) * W : (i / bins.length) * W;
          const x1 = ranged ? ((b.end! - lo) / span) * W : ((i + 1) / bins.length) * W;
          const w = Math.max(1, x1 - x0 - 1);
          const h = Math.min(1, heightOf(b, b.value) / max) * H;
          const hc = b.compare === undefined ? 0 : Math.min(1, heightOf(b, b.compare) / max) * H;
          return (
            <g key={i}>
              {b.compare === undefined ? (
                <rect x={x0} y={H - h} width={w} height={h} className="bar" />
              ) : (
                <>
                  <rect x={x0} y={H - h} width={w / 2} height={h} className="bar" />
                  <rect x={x0 + w / 2} y={H - hc} width={w / 2} height={hc} className="bar bar-compare" />
                </>
              )}
            </g>
          );
        })}
        <line x1={0} x2={W} y1={H + 0.5} y2={H + 0.5} className="axis" />
      </svg>
      {ranged ? (
        <div className="bar-labels" aria-hidden="true">
          <span>{formatNumber(lo)}</span>
          <span>{formatNumber(hi)}</span>
        </div>
      ) : (
        <div className="bar-labels per-bar" aria-hidden="true">
          {bins.length <= 16 ? bins.map((b, i) => <span key={i}>{b.label}</span>) : [<span key="first">{bins[0]!.label}</span>, <span key="last">{bins[bins.length - 1]!.label}</span>]}
        </div>
      )}
      <figcaption>
        {title}
        {compareLabels !== undefined && (
          <span className="bar-key">
            {' '}
            <span className="swatch bar-swatch" aria-hidden="true" /> {compareLabels[0]} <span className="swatch bar-swatch-compare" aria-hidden="true" /> {compareLabels[1]}
          </span>
        )}
        {note !== undefined && <span className="note"> {note}</span>}
      </figcaption>
    </figure>
  );
}
