import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { type LinePlotSpec, layoutLinePlot } from "./line-plot.js";
import { encodePng } from "./png.js";
import { rasterize } from "./raster.js";
import { sceneToSvg } from "./svg.js";

export type { LinePlotSpec, LineSeries, XAxis } from "./line-plot.js";

export type PlotFormat = "svg" | "png";

/** The format a file name asks for, or null when its extension is neither .svg nor .png. */
export function plotFormatOf(file: string): PlotFormat | null {
  const e = extname(file).toLowerCase();
  return e === ".svg" ? "svg" : e === ".png" ? "png" : null;
}

/** Render a line plot as an SVG document or PNG bytes. */
export function renderLinePlot(spec: LinePlotSpec, format: PlotFormat): string | Buffer {
  const scene = layoutLinePlot(spec);
  if (format === "svg") return sceneToSvg(scene);
  const cv = rasterize(scene);
  return encodePng(cv.width, cv.height, cv.data);
}

/** Write the plot to `file` (format from its extension; parent directories created). */
export function writeLinePlot(file: string, spec: LinePlotSpec): void {
  const format = plotFormatOf(file);
  if (format === null) throw new Error(`plot file '${file}' must end in .svg or .png`);
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, renderLinePlot(spec, format));
}
