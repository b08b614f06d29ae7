/**
 * Axis scales for the line plots: linear or log10 numeric scales with "nice" ticks, and category
 * scales (enum and bool sweeps). A scale maps a data value to a pixel between `from` and `to`.
 */

export interface Scale {
  readonly kind: "linear" | "log" | "category";
  /** Pixel of a value; NaN when it cannot be placed (e.g. <= 0 on a log scale). */
  map(v: number | string): number;
  readonly ticks: readonly Tick[];
}

export interface Tick {
  readonly value: number | string;
  readonly label: string;
  readonly px: number;
}

/** Whether positive values spread over more than `ratio`× call for a log scale. */
export function wantsLog(values: readonly number[], ratio = 100): boolean {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length < 2 || v.some((x) => x <= 0)) return false;
  return Math.max(...v) / Math.min(...v) > ratio;
}

/** 1, 2 or 5 times a power of ten, at least `x`. */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  const m = x / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
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

export interface NumericScaleOptions {
  readonly log: boolean;
  readonly from: number;
  readonly to: number;
  /** Put ticks at these values (the swept points) instead of computed ones. */
  readonly tickValues?: readonly number[];
  readonly format?: (v: number) => string;
  /** Start a linear scale at zero when all values are positive. */
  readonly zero?: boolean;
}

/** A numeric scale over `values` (non-finite values are ignored). */
export function numericScale(values: readonly number[], o: NumericScaleOptions): Scale {
  const fmt = o.format ?? formatTick;
  const v = values.filter((x) => Number.isFinite(x) && (!o.log || x > 0));
  let lo = v.length > 0 ? Math.min(...v) : 0;
  let hi = v.length > 0 ? Math.max(...v) : 1;
  let ticks: number[];
  let map: (x: number) => number;
  if (o.log) {
    if (lo === hi) {
      lo /= 10;
      hi *= 10;
    }
    let a = Math.log10(lo);
    let b = Math.log10(hi);
    if (o.tickValues === undefined) {
      a = Math.floor(a);
      b = Math.ceil(b);
      const every = Math.max(1, Math.ceil((b - a) / 8));
      // End the axis on a labelled decade.
      b = a + Math.ceil((b - a) / every) * every;
      ticks = [];
      for (let e = a; e <= b; e += every) ticks.push(10 ** e);
    } else {
      ticks = [...o.tickValues];
      const pad = (b - a) * 0.04 || 0.5;
      a -= pad;
      b += pad;
    }
    map = (x) => (x > 0 ? o.from + ((Math.log10(x) - a) / (b - a)) * (o.to - o.from) : Number.NaN);
  } else {
    if (o.zero && lo > 0) lo = 0;
    if (lo === hi) {
      const d = lo === 0 ? 1 : Math.abs(lo) * 0.5;
      lo -= d;
      hi += d;
    }
    if (o.tickValues === undefined) {
      const step = niceStep((hi - lo) / 5);
      lo = Math.floor(lo / step) * step;
      hi = Math.ceil(hi / step) * step;
      ticks = [];
      for (let i = 0; lo + i * step <= hi + step * 1e-9; i++)
        ticks.push(Number((lo + i * step).toPrecision(12)));
    } else {
      ticks = [...o.tickValues];
      const pad = (hi - lo) * 0.04;
      lo -= pad;
      hi += pad;
    }
    const [a, b] = [lo, hi];
    map = (x) => o.from + ((x - a) / (b - a)) * (o.to - o.from);
  }
  return {
    kind: o.log ? "log" : "linear",
    map: (x) => (typeof x === "number" ? map(x) : Number.NaN),
    ticks: ticks.map((t) => ({ value: t, label: fmt(t), px: map(t) })),
  };
}

/** Evenly spaced categories with half a step of margin on each side. */
export function categoryScale(values: readonly string[], from: number, to: number): Scale {
  const step = (to - from) / Math.max(1, values.length);
  const px = (i: number) => from + step * (i + 0.5);
  return {
    kind: "category",
    map: (x) => {
      const i = values.indexOf(String(x));
      return i < 0 ? Number.NaN : px(i);
    },
    ticks: values.map((v, i) => ({ value: v, label: v, px: px(i) })),
  };
}
