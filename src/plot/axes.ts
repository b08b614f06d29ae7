/**
 * Axis decisions the plots share: when a numeric axis goes logarithmic, where a byte-size axis
 * puts its ticks, and how a tick is labelled.
 */

/** Whether positive values spread over more than `ratio`× call for a log scale (any value <= 0: no). */
export function wantsLog(values: readonly number[], ratio = 100): boolean {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length < 2 || v.some((x) => x <= 0)) return false;
  return Math.max(...v) / Math.min(...v) > ratio;
}

/**
 * Ticks of a byte-size axis: the swept values themselves when they are at most ten powers of two,
 * else powers of two from below the smallest to above the largest, every k-th exponent so that at
 * most ten remain.
 */
export function binaryTicks(values: readonly number[]): number[] {
  const v = [...new Set(values.filter((x) => Number.isFinite(x) && x > 0))].sort((a, b) => a - b);
  if (v.length === 0) return [];
  if (v.length <= 10 && v.every((x) => Number.isInteger(Math.log2(x)))) return v;
  const lo = Math.floor(Math.log2(v[0]));
  const hi = Math.ceil(Math.log2(v[v.length - 1]));
  const step = Math.max(1, Math.ceil((hi - lo + 1) / 10));
  const out: number[] = [];
  for (let e = lo; e <= hi; e += step) out.push(2 ** e);
  return out;
}

/** Ticks of a log10 axis: every power of ten from below the smallest positive value to above the largest. */
export function decades(values: readonly number[]): number[] {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (v.length === 0) return [];
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(Math.min(...v))); e <= Math.ceil(Math.log10(Math.max(...v))); e++)
    out.push(10 ** e);
  return out;
}

/** A tick label: up to four significant digits, exponent form for very large or small values. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) {
    const e = Math.floor(Math.log10(a));
    const m = Number((v / 10 ** e).toPrecision(3));
    return m === 1 ? `1e${e}` : m === -1 ? `-1e${e}` : `${m}e${e}`;
  }
  return String(Number(v.toPrecision(4)));
}
