/**
 * A line plot as data: what `tdplab simulate --plot` and `npm run report` draw. Rendering is
 * Observable Plot's (observable.ts); this file only says what to draw.
 */

export interface LinePoint {
  readonly x: number | string;
  /** null: no value at this x (a gap in the line). */
  readonly y: number | null;
}

export interface LineSeries {
  readonly name: string;
  readonly points: readonly LinePoint[];
}

export type XAxis =
  | {
      readonly kind: "numeric";
      readonly values: readonly number[];
      readonly format?: (v: number) => string;
      /** Byte sizes: a base-2 axis with ticks at powers of two, labelled 1GiB … 64TiB. */
      readonly binary?: boolean;
    }
  | { readonly kind: "category"; readonly values: readonly string[] };

export interface LinePlotSpec {
  readonly title: string;
  /** Second line(s) under the title, e.g. the fixed parameters; wrapped to the width. */
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly x: XAxis;
  readonly series: readonly LineSeries[];
  /** Log y axis: true, false, or "auto" (positive values spanning more than 100×). Default auto. */
  readonly yLog?: boolean | "auto";
  /** Log x axis for numeric x: "auto" (default) when the values span more than 100×. */
  readonly xLog?: boolean | "auto";
  readonly width?: number;
  readonly height?: number;
}

/** Series colours, in order (Observable Plot's default categorical scheme is Tableau 10 too). */
export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];
