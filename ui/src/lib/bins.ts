/** One bar of a bar chart (components/bars.tsx). */
export interface Bin {
  readonly label: string;
  readonly value: number;
  /** For histograms: the bin's range; the bar's width follows it. */
  readonly start?: number;
  readonly end?: number;
  /** A second value drawn beside the first (e.g. live against reference). */
  readonly compare?: number;
}
