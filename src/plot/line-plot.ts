import { GLYPH_ADVANCE, GLYPH_ASCENT } from "./font.js";
import { categoryScale, numericScale, type Scale, wantsLog } from "./scale.js";

/**
 * A line plot as data (LinePlotSpec), laid out into drawing primitives (Scene) that the SVG writer
 * and the PNG rasteriser both draw, so the two outputs agree. Text is monospace: a character of
 * scale s advances 6·s pixels and rises 7·s above its baseline, the metrics of the bitmap font.
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
  | { readonly kind: "numeric"; readonly values: readonly number[]; readonly format?: (v: number) => string }
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

export type Prim =
  | { readonly kind: "rect"; x: number; y: number; w: number; h: number; fill?: string; stroke?: string }
  | { readonly kind: "line"; x1: number; y1: number; x2: number; y2: number; color: string; width: number }
  | {
      readonly kind: "polyline";
      /** Sub-paths (a line broken at missing values). */
      parts: readonly (readonly [number, number])[][];
      color: string;
      width: number;
      series: string;
    }
  | { readonly kind: "circle"; cx: number; cy: number; r: number; fill: string }
  | {
      readonly kind: "text";
      x: number;
      y: number;
      text: string;
      /** Integer scale of the bitmap font (SVG font-size 10·scale). */
      scale: number;
      anchor: "start" | "middle" | "end";
      color: string;
      /** Rotated a quarter turn counter-clockwise (reads bottom to top). */
      vertical?: boolean;
    };

export interface Scene {
  readonly width: number;
  readonly height: number;
  readonly background: string;
  readonly prims: readonly Prim[];
}

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
const INK = "#222222";
const GRID = "#e4e4e4";
const AXIS = "#555555";

export function textWidth(text: string, scale: number): number {
  return [...text].length * GLYPH_ADVANCE * scale;
}

/** Greedy word wrap to `maxChars` per line. */
function wrap(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(" ").filter((w) => w !== "")) {
      if (line === "") line = word;
      else if (line.length + 1 + word.length <= maxChars) line += ` ${word}`;
      else {
        lines.push(line);
        line = word;
      }
    }
    lines.push(line);
  }
  return lines.map((l) => (l.length > maxChars ? `${l.slice(0, maxChars - 1)}…` : l));
}

function finiteYs(spec: LinePlotSpec): number[] {
  return spec.series
    .flatMap((s) => s.points.map((p) => p.y))
    .filter((y): y is number => y !== null && Number.isFinite(y));
}

/** Lay the plot out: axes, grid, ticks, one polyline and markers per series, legend and titles. */
export function layoutLinePlot(spec: LinePlotSpec): Scene {
  const width = spec.width ?? 1100;
  const height = spec.height ?? 680;
  const prims: Prim[] = [];
  const pad = 24;

  // Titles.
  const titleScale = 3;
  const titleChars = Math.floor((width - 2 * pad) / (GLYPH_ADVANCE * titleScale));
  let y = pad + GLYPH_ASCENT * titleScale;
  for (const line of wrap(spec.title, titleChars)) {
    prims.push({
      kind: "text",
      x: width / 2,
      y,
      text: line,
      scale: titleScale,
      anchor: "middle",
      color: INK,
    });
    y += 30;
  }
  const subChars = Math.floor((width - 2 * pad) / (GLYPH_ADVANCE * 2));
  if (spec.subtitle) {
    y += 4;
    for (const line of wrap(spec.subtitle, subChars)) {
      prims.push({ kind: "text", x: width / 2, y, text: line, scale: 2, anchor: "middle", color: AXIS });
      y += 20;
    }
  }
  const top = y + 12;

  // Legend on the right.
  const legendChars = Math.min(24, Math.max(4, ...spec.series.map((s) => [...s.name].length)));
  const legendW = 50 + legendChars * GLYPH_ADVANCE * 2;
  const right = width - pad - legendW - 16;

  // Y scale first (its tick labels set the left margin).
  const ys = finiteYs(spec);
  const yLog = spec.yLog === true || ((spec.yLog ?? "auto") === "auto" && wantsLog(ys));
  const bottom = height - 80;
  const yScale = numericScale(ys, { log: yLog, from: bottom, to: top, zero: !yLog });
  const yTickW = Math.max(...yScale.ticks.map((t) => textWidth(t.label, 2)));
  const left = pad + 24 + yTickW + 12;

  let xScale: Scale;
  if (spec.x.kind === "category") xScale = categoryScale(spec.x.values, left, right);
  else {
    const xs = spec.x.values;
    const xLog = spec.xLog === true || ((spec.xLog ?? "auto") === "auto" && wantsLog(xs));
    const distinct = [...new Set(xs)].sort((a, b) => a - b);
    xScale = numericScale(xs, {
      log: xLog,
      from: left,
      to: right,
      tickValues: distinct.length > 0 && distinct.length <= 16 ? distinct : undefined,
      format: spec.x.format,
    });
  }

  // Frame, grid and ticks.
  prims.push({
    kind: "rect",
    x: left,
    y: top,
    w: right - left,
    h: bottom - top,
    fill: "#ffffff",
    stroke: AXIS,
  });
  for (const t of yScale.ticks) {
    if (!(t.px >= top - 0.5 && t.px <= bottom + 0.5)) continue;
    prims.push({ kind: "line", x1: left, y1: t.px, x2: right, y2: t.px, color: GRID, width: 1 });
    prims.push({ kind: "line", x1: left - 6, y1: t.px, x2: left, y2: t.px, color: AXIS, width: 1 });
    prims.push({
      kind: "text",
      x: left - 10,
      y: t.px + 7,
      text: t.label,
      scale: 2,
      anchor: "end",
      color: INK,
    });
  }
  let lastLabelEnd = Number.NEGATIVE_INFINITY;
  for (const t of xScale.ticks) {
    if (!(t.px >= left - 0.5 && t.px <= right + 0.5)) continue;
    prims.push({ kind: "line", x1: t.px, y1: top, x2: t.px, y2: bottom, color: GRID, width: 1 });
    prims.push({ kind: "line", x1: t.px, y1: bottom, x2: t.px, y2: bottom + 6, color: AXIS, width: 1 });
    // Crowded tick labels: keep the tick, drop a label that would overlap the previous one.
    const w = textWidth(t.label, 2);
    if (t.px - w / 2 < lastLabelEnd + 8) continue;
    lastLabelEnd = t.px + w / 2;
    prims.push({
      kind: "text",
      x: t.px,
      y: bottom + 26,
      text: t.label,
      scale: 2,
      anchor: "middle",
      color: INK,
    });
  }
  prims.push({
    kind: "text",
    x: (left + right) / 2,
    y: bottom + 60,
    text: spec.xLabel + (xScale.kind === "log" ? " (log scale)" : ""),
    scale: 2,
    anchor: "middle",
    color: INK,
  });
  prims.push({
    kind: "text",
    x: pad + 14,
    y: (top + bottom) / 2,
    text: spec.yLabel + (yLog ? " (log scale)" : ""),
    scale: 2,
    anchor: "middle",
    color: INK,
    vertical: true,
  });

  // Series. Earlier series get wider lines and larger markers, so that series with equal values stay
  // visible as nested rings instead of hiding each other.
  const n = spec.series.length;
  const markerR = (i: number) => 3.5 + 2 * Math.min(n - 1 - i, 4);
  const lineW = (i: number) => 2 + 0.8 * Math.min(n - 1 - i, 3);
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const parts: [number, number][][] = [];
    let cur: [number, number][] = [];
    for (const p of s.points) {
      const px = xScale.map(p.x);
      const py = p.y === null ? Number.NaN : yScale.map(p.y);
      if (Number.isFinite(px) && Number.isFinite(py)) cur.push([round(px), round(py)]);
      else if (cur.length > 0) {
        parts.push(cur);
        cur = [];
      }
    }
    if (cur.length > 0) parts.push(cur);
    prims.push({ kind: "polyline", parts, color, width: lineW(i), series: s.name });
    for (const part of parts) {
      for (const [cx, cy] of part) prims.push({ kind: "circle", cx, cy, r: markerR(i), fill: color });
    }
  });

  // Legend.
  const lx = right + 16;
  let ly = top;
  prims.push({
    kind: "rect",
    x: lx,
    y: ly,
    w: legendW,
    h: 16 + spec.series.length * 26,
    fill: "#ffffff",
    stroke: GRID,
  });
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const cy = ly + 21;
    prims.push({ kind: "line", x1: lx + 10, y1: cy, x2: lx + 38, y2: cy, color, width: lineW(i) });
    prims.push({ kind: "circle", cx: lx + 24, cy, r: Math.min(markerR(i), 10), fill: color });
    const name =
      [...s.name].length > legendChars ? `${[...s.name].slice(0, legendChars - 1).join("")}…` : s.name;
    prims.push({ kind: "text", x: lx + 46, y: cy + 7, text: name, scale: 2, anchor: "start", color: INK });
    ly += 26;
  });

  return { width, height, background: "#fafafa", prims };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
