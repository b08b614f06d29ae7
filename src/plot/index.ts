import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { linePlotSvg } from "./observable.js";
import { svgToPng } from "./png.js";
import type { LinePlotSpec } from "./spec.js";

export type { LinePlotSpec, LineSeries, XAxis } from "./spec.js";

export type PlotFormat = "svg" | "png";

/** The format a file name asks for, or null when its extension is neither .svg nor .png. */
export function plotFormatOf(file: string): PlotFormat | null {
  const e = extname(file).toLowerCase();
  return e === ".svg" ? "svg" : e === ".png" ? "png" : null;
}

/** Render a line plot as an SVG document (Observable Plot) or PNG bytes (that SVG through resvg). */
export function renderLinePlot(spec: LinePlotSpec, format: PlotFormat): string | Buffer {
  const svg = linePlotSvg(spec);
  return format === "svg" ? svg : svgToPng(svg);
}

/** Write the plot to `file` (format from its extension; parent directories created). */
export function writeLinePlot(file: string, spec: LinePlotSpec): void {
  const format = plotFormatOf(file);
  if (format === null) throw new Error(`plot file '${file}' must end in .svg or .png`);
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, renderLinePlot(spec, format));
}
