import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { binaryTicks, decades, formatTick, wantsLog } from "./axes.js";
import { type LinePlotSpec, PALETTE } from "./spec.js";

/**
 * A line plot drawn by Observable Plot, server-side: Plot builds its SVG in a linkedom document,
 * and this file adds what Plot would put in HTML around the SVG (title, subtitle, legend) as SVG
 * elements, so that the result is one standalone SVG file.
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const INK = "#222222";
const MUTED = "#555555";
const BACKGROUND = "#fafafa";
const TITLE_PX = 22;
const SUBTITLE_PX = 13;
const LEGEND_PX = 13;
/** Average advance of a character as a fraction of the font size (system-ui, sans-serif). */
const CHAR_EM = 0.6;

/** Greedy word wrap to `maxChars` per line. */
export function wrap(text: string, maxChars: number): string[] {
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

interface Row {
  readonly x: number | string;
  readonly y: number | null;
}

type El = {
  setAttribute(k: string, v: string): void;
  appendChild(c: unknown): void;
  insertBefore(c: unknown, ref: unknown): void;
  firstChild: unknown;
  textContent: string | null;
  outerHTML: string;
};

/** The plot as a standalone SVG document. Deterministic: the same spec gives the same bytes. */
export function linePlotSvg(spec: LinePlotSpec): string {
  const { document } = parseHTML("<!DOCTYPE html><html><head></head><body></body></html>");
  const width = spec.width ?? 1100;
  const height = spec.height ?? 680;
  const pad = 24;

  const titleLines = wrap(spec.title, Math.floor((width - 2 * pad) / (TITLE_PX * CHAR_EM)));
  const subLines = spec.subtitle
    ? wrap(spec.subtitle, Math.floor((width - 2 * pad) / (SUBTITLE_PX * CHAR_EM)))
    : [];
  const headerH = pad + titleLines.length * (TITLE_PX + 6) + subLines.length * (SUBTITLE_PX + 5) + 16;
  const legendChars = Math.min(24, Math.max(4, ...spec.series.map((s) => [...s.name].length)));
  const legendW = 56 + legendChars * LEGEND_PX * CHAR_EM;

  const ys = spec.series
    .flatMap((s) => s.points.map((p) => p.y))
    .filter((y): y is number => y !== null && Number.isFinite(y));
  const yLog = spec.yLog === true || ((spec.yLog ?? "auto") === "auto" && wantsLog(ys));
  const x = spec.x;
  const xLog =
    x.kind === "numeric" && (spec.xLog === true || ((spec.xLog ?? "auto") === "auto" && wantsLog(x.values)));
  const logNote = (log: boolean) => (log ? " (log scale)" : "");

  let xOptions: Plot.ScaleOptions;
  if (x.kind === "category") {
    xOptions = { type: "point", domain: [...x.values], padding: 0.5 };
  } else {
    const distinct = [...new Set(x.values)].sort((a, b) => a - b);
    const ticks = x.binary
      ? binaryTicks(x.values)
      : distinct.length > 0 && distinct.length <= 16
        ? distinct
        : undefined;
    xOptions = {
      type: xLog ? "log" : "linear",
      ...(xLog && x.binary ? { base: 2 } : {}),
      ...(ticks === undefined ? {} : { ticks }),
      tickFormat: x.format ?? formatTick,
    };
  }

  const n = spec.series.length;
  const color = (i: number) => PALETTE[i % PALETTE.length];
  // Earlier series get wider lines and larger dots, so series with equal values stay visible as
  // nested rings instead of hiding each other.
  const lineW = (i: number) => 2 + 0.8 * Math.min(n - 1 - i, 3);
  const dotR = (i: number) => 3.5 + 2 * Math.min(n - 1 - i, 4);
  const marks: Plot.Markish[] = [Plot.frame({ stroke: MUTED })];
  spec.series.forEach((s, i) => {
    // A value a log axis cannot place (<= 0) is a gap, as a missing one is.
    const rows: Row[] = s.points.map((p) => ({
      x: p.x,
      y: p.y !== null && Number.isFinite(p.y) && (!yLog || p.y > 0) ? p.y : null,
    }));
    marks.push(
      Plot.line(rows, {
        x: "x",
        y: "y",
        stroke: color(i),
        strokeWidth: lineW(i),
      }),
      Plot.dot(
        rows.filter((r) => r.y !== null),
        { x: "x", y: "y", fill: color(i), r: dotR(i) },
      ),
    );
  });

  const svg = Plot.plot({
    document: document as unknown as NonNullable<Plot.PlotOptions["document"]>,
    width,
    height,
    marginTop: headerH,
    marginRight: legendW + 16,
    marginLeft: 90,
    marginBottom: 64,
    style: { fontSize: "13px", color: INK },
    x: {
      ...xOptions,
      label: `${spec.xLabel}${logNote(xLog)}`,
      labelAnchor: "center",
      labelArrow: false,
      labelOffset: 44,
    },
    y: {
      type: yLog ? "log" : "linear",
      grid: true,
      zero: !yLog,
      tickFormat: formatTick,
      ...(yLog ? { ticks: decades(ys), domain: [decades(ys)[0], decades(ys).at(-1)!] } : {}),
      label: `${spec.yLabel}${logNote(yLog)}`,
      labelAnchor: "center",
      labelArrow: false,
      labelOffset: 76,
    },
    marks,
  }) as unknown as El;

  const el = (name: string, attrs: Record<string, string | number>, text?: string): El => {
    const e = document.createElementNS(SVG_NS, name) as unknown as El;
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  svg.setAttribute("xmlns", SVG_NS);
  svg.insertBefore(el("rect", { x: 0, y: 0, width, height, fill: BACKGROUND }), svg.firstChild);
  const head = el("g", { "aria-label": "title" });
  let y = pad + TITLE_PX;
  for (const line of titleLines) {
    head.appendChild(
      el("text", { x: width / 2, y, "font-size": TITLE_PX, "font-weight": "bold", fill: INK }, line),
    );
    y += TITLE_PX + 6;
  }
  for (const line of subLines) {
    head.appendChild(el("text", { x: width / 2, y: y - 4, "font-size": SUBTITLE_PX, fill: MUTED }, line));
    y += SUBTITLE_PX + 5;
  }
  svg.appendChild(head);

  const legend = el("g", { "aria-label": "legend", "text-anchor": "start" });
  const lx = width - legendW - 8;
  legend.appendChild(
    el("rect", {
      x: lx,
      y: headerH,
      width: legendW,
      height: 16 + n * 26,
      fill: "#ffffff",
      stroke: "#e4e4e4",
    }),
  );
  spec.series.forEach((s, i) => {
    const cy = headerH + 21 + 26 * i;
    legend.appendChild(
      el("line", { x1: lx + 10, y1: cy, x2: lx + 38, y2: cy, stroke: color(i), "stroke-width": lineW(i) }),
    );
    legend.appendChild(el("circle", { cx: lx + 24, cy, r: Math.min(dotR(i), 10), fill: color(i) }));
    const name =
      [...s.name].length > legendChars ? `${[...s.name].slice(0, legendChars - 1).join("")}…` : s.name;
    legend.appendChild(el("text", { x: lx + 46, y: cy + 5, "font-size": LEGEND_PX, fill: INK }, name));
  });
  svg.appendChild(legend);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${svg.outerHTML}\n`;
}
