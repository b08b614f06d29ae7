import type { Prim, Scene } from "./line-plot.js";

/**
 * A Scene as a standalone SVG document. Text uses a monospace font at 10 px per bitmap-font scale
 * step, which is the 6 px advance the layout reserves per character. Each series is one <path>
 * (class "series"), broken into sub-paths where values are missing.
 */

export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos" }[c]};`,
  );
}

function n(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function prim(p: Prim): string {
  switch (p.kind) {
    case "rect":
      return `<rect x="${n(p.x)}" y="${n(p.y)}" width="${n(p.w)}" height="${n(p.h)}" fill="${p.fill ?? "none"}"${p.stroke ? ` stroke="${p.stroke}"` : ""}/>`;
    case "line":
      return `<line x1="${n(p.x1)}" y1="${n(p.y1)}" x2="${n(p.x2)}" y2="${n(p.y2)}" stroke="${p.color}" stroke-width="${p.width}"/>`;
    case "polyline": {
      const d = p.parts
        .map((part) => part.map(([x, y], i) => `${i === 0 ? "M" : "L"}${n(x)} ${n(y)}`).join(" "))
        .join(" ");
      return `<path class="series" data-series="${escapeXml(p.series)}" d="${d}" fill="none" stroke="${p.color}" stroke-width="${p.width}" stroke-linejoin="round" stroke-linecap="round"/>`;
    }
    case "circle":
      return `<circle cx="${n(p.cx)}" cy="${n(p.cy)}" r="${n(p.r)}" fill="${p.fill}"/>`;
    case "text": {
      const rot = p.vertical ? ` transform="rotate(-90 ${n(p.x)} ${n(p.y)})"` : "";
      return `<text x="${n(p.x)}" y="${n(p.y)}" font-size="${10 * p.scale}" text-anchor="${p.anchor}" fill="${p.color}"${rot}>${escapeXml(p.text)}</text>`;
    }
  }
}

export function sceneToSvg(scene: Scene): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">`,
    `<rect x="0" y="0" width="${scene.width}" height="${scene.height}" fill="${scene.background}"/>`,
    ...scene.prims.map(prim),
    "</svg>",
    "",
  ].join("\n");
}
