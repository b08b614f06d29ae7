import { ms, type StudyResult } from "./report-lib.js";

/**
 * Reading helpers shared by the report's questions: short sentences built only from the numbers of a
 * study, so that a reading stays true when the model or its prices change.
 */

/** "sync 14.19 ms → 929.7 s (65,500×) from 1GiB to 64TiB". */
export function sweepLine(
  r: StudyResult,
  label: string,
  metric: string,
  unit: "ms" | "plain" = "ms",
): string {
  const pts = r.points;
  const vals = r.series(label, metric);
  const first = vals.findIndex((v) => v !== null);
  const last = vals.length - 1 - [...vals].reverse().findIndex((v) => v !== null);
  if (first < 0) return `${label}: no ${metric}`;
  const f = (v: number) => (unit === "ms" ? ms(v) : String(Number(v.toPrecision(4))));
  const a = vals[first]!;
  const b = vals[last]!;
  if (first === last) return `${label}: ${f(a)}`;
  const ratio = a === 0 ? "" : ` (${Number((b / a).toPrecision(3))}×)`;
  return `${label}: ${f(a)} at ${pts[first]} → ${f(b)} at ${pts[last]}${ratio}`;
}

/** Slope of log(y) against log(x) over the positive points: 1 means proportional. */
export function logSlope(xs: readonly number[], ys: readonly (number | null)[]): number | null {
  const pts = xs.map((x, i) => [x, ys[i]] as const).filter(([x, y]) => x > 0 && y !== null && y > 0);
  if (pts.length < 2) return null;
  const lx = pts.map(([x]) => Math.log(x));
  const ly = pts.map(([, y]) => Math.log(y as number));
  const mx = lx.reduce((a, b) => a + b) / lx.length;
  const my = ly.reduce((a, b) => a + b) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i] - mx) * (ly[i] - my);
    den += (lx[i] - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

/**
 * How a series scales with the swept values, in words; `tail` keeps only the last points (the
 * asymptotic regime, when the first points are dominated by something else).
 */
export function scaling(xs: readonly number[], ys: readonly (number | null)[], tail = xs.length): string {
  const s = logSlope(xs.slice(-tail), ys.slice(-tail));
  if (s === null) return "too few points to say how it scales";
  if (Math.abs(s) < 0.05) return "flat";
  if (Math.abs(s - 1) < 0.1) return "proportional to the swept value";
  return `growing as the swept value to the power ${s.toFixed(2)}`;
}

/** Least-squares line y = a + b·x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((p, q) => p + q, 0) / n;
  const my = ys.reduce((p, q) => p + q, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  const b = den === 0 ? 0 : num / den;
  return { a: my - b * mx, b };
}

/** The swept values as numbers (sizes in bytes, durations in ns). */
export function sweptNumbers(r: StudyResult): number[] {
  return (r.plan.sweep?.values ?? []).map((v) => (typeof v === "number" ? v : Number.NaN));
}

/** Whether every run's metric stays within 1% across the sweep. */
export function flatAcross(r: StudyResult, metric: string): boolean {
  return r.labels.every((l) => {
    const v = r.series(l, metric).filter((x): x is number => x !== null);
    if (v.length === 0) return true;
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    return hi === lo || (lo > 0 && hi / lo < 1.01);
  });
}
