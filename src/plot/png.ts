import { Resvg } from "@resvg/resvg-js";

/**
 * An SVG document as PNG bytes, rasterised by resvg. Text uses the system's fonts (resvg loads
 * them; the default family is DejaVu Sans, which most Linux systems have): on a machine without
 * fonts the PNG has no text, and a different font set gives different pixels.
 */
export function svgToPng(svg: string): Buffer {
  const r = new Resvg(svg, {
    background: "#fafafa",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
  });
  return r.render().asPng();
}
