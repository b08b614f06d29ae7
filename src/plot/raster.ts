import { GLYPH_ADVANCE, GLYPH_ASCENT, GLYPH_ROWS, GLYPH_WIDTH, glyphRows } from "./font.js";
import type { Prim, Scene } from "./line-plot.js";
import { textWidth } from "./line-plot.js";

/**
 * A small software rasteriser for Scenes: an RGB canvas with anti-aliased thick lines and discs
 * (coverage from the distance of each pixel centre to the shape), crisp axis-aligned hairlines, and
 * text from the bitmap font scaled by whole pixels. No fonts or native code are needed.
 */

export class Canvas {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: string,
  ) {
    this.data = new Uint8Array(width * height * 3);
    const [r, g, b] = parseColor(background);
    for (let i = 0; i < width * height; i++) {
      this.data[3 * i] = r;
      this.data[3 * i + 1] = g;
      this.data[3 * i + 2] = b;
    }
  }

  /** Blend `rgb` over pixel (x, y) with coverage a in [0, 1]. */
  blend(x: number, y: number, rgb: readonly [number, number, number], a: number): void {
    if (a <= 0 || x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = 3 * (y * this.width + x);
    const k = Math.min(1, a);
    for (let c = 0; c < 3; c++) this.data[i + c] = Math.round(rgb[c] * k + this.data[i + c] * (1 - k));
  }

  pixel(x: number, y: number): [number, number, number] {
    const i = 3 * (y * this.width + x);
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }

  fillRect(x: number, y: number, w: number, h: number, color: string): void {
    const rgb = parseColor(color);
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.blend(xx, yy, rgb, 1);
  }

  /** A segment of width `w` with round caps, anti-aliased. */
  line(x1: number, y1: number, x2: number, y2: number, w: number, color: string): void {
    if (w <= 1.5 && (x1 === x2 || y1 === y2)) {
      // Hairline on the pixel grid: one crisp pixel row or column.
      const xa = Math.floor(Math.min(x1, x2));
      const ya = Math.floor(Math.min(y1, y2));
      this.fillRect(xa, ya, Math.max(1, Math.abs(x2 - x1)), Math.max(1, Math.abs(y2 - y1)), color);
      return;
    }
    const rgb = parseColor(color);
    const hw = w / 2;
    const x0 = Math.max(0, Math.floor(Math.min(x1, x2) - hw - 1));
    const xMax = Math.min(this.width - 1, Math.ceil(Math.max(x1, x2) + hw + 1));
    const y0 = Math.max(0, Math.floor(Math.min(y1, y2) - hw - 1));
    const yMax = Math.min(this.height - 1, Math.ceil(Math.max(y1, y2) + hw + 1));
    const dx = x2 - x1;
    const dy = y2 - y1;
    const len2 = dx * dx + dy * dy;
    for (let py = y0; py <= yMax; py++) {
      for (let px = x0; px <= xMax; px++) {
        const cx = px + 0.5;
        const cy = py + 0.5;
        const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((cx - x1) * dx + (cy - y1) * dy) / len2));
        const d = Math.hypot(cx - (x1 + t * dx), cy - (y1 + t * dy));
        this.blend(px, py, rgb, hw + 0.5 - d);
      }
    }
  }

  disc(cx: number, cy: number, r: number, color: string): void {
    const rgb = parseColor(color);
    for (let py = Math.floor(cy - r - 1); py <= Math.ceil(cy + r + 1); py++) {
      for (let px = Math.floor(cx - r - 1); px <= Math.ceil(cx + r + 1); px++) {
        this.blend(px, py, rgb, r + 0.5 - Math.hypot(px + 0.5 - cx, py + 0.5 - cy));
      }
    }
  }

  /**
   * Bitmap text whose baseline starts at (x, y) after anchoring; `vertical` turns it a quarter turn
   * counter-clockwise about (x, y), so it reads upwards with the baseline on column x.
   */
  text(
    x: number,
    y: number,
    s: string,
    scale: number,
    anchor: "start" | "middle" | "end",
    color: string,
    vertical = false,
  ): void {
    const rgb = parseColor(color);
    const w = textWidth(s, scale);
    const shift = anchor === "start" ? 0 : anchor === "middle" ? w / 2 : w;
    let pen = -shift;
    for (const ch of s) {
      const rows = glyphRows(ch);
      for (let r = 0; r < GLYPH_ROWS; r++) {
        for (let c = 0; c < GLYPH_WIDTH; c++) {
          if ((rows[r] & (0x10 >> c)) === 0) continue;
          // Glyph pixel in text space: u along the baseline, v downwards from the baseline.
          const u = pen + c * scale;
          const v = (r - GLYPH_ASCENT) * scale;
          for (let i = 0; i < scale; i++) {
            for (let j = 0; j < scale; j++) {
              const px = vertical ? x + v + j : x + u + i;
              const py = vertical ? y - u - i - 1 : y + v + j;
              this.blend(Math.round(px), Math.round(py), rgb, 1);
            }
          }
        }
      }
      pen += GLYPH_ADVANCE * scale;
    }
  }
}

/** "#rrggbb" or "#rgb" as bytes. */
export function parseColor(c: string): [number, number, number] {
  const h = c.replace("#", "");
  const full = h.length === 3 ? [...h].map((x) => x + x).join("") : h;
  if (!/^[0-9a-fA-F]{6}$/.test(full)) throw new Error(`colour '${c}' is not #rrggbb`);
  return [0, 2, 4].map((i) => Number.parseInt(full.slice(i, i + 2), 16)) as [number, number, number];
}

function draw(cv: Canvas, p: Prim): void {
  switch (p.kind) {
    case "rect":
      if (p.fill) cv.fillRect(p.x, p.y, p.w, p.h, p.fill);
      if (p.stroke) {
        cv.line(p.x, p.y, p.x + p.w, p.y, 1, p.stroke);
        cv.line(p.x, p.y + p.h, p.x + p.w + 1, p.y + p.h, 1, p.stroke);
        cv.line(p.x, p.y, p.x, p.y + p.h, 1, p.stroke);
        cv.line(p.x + p.w, p.y, p.x + p.w, p.y + p.h, 1, p.stroke);
      }
      return;
    case "line":
      cv.line(p.x1, p.y1, p.x2, p.y2, p.width, p.color);
      return;
    case "polyline":
      for (const part of p.parts) {
        if (part.length === 1) cv.disc(part[0][0], part[0][1], p.width / 2, p.color);
        for (let i = 1; i < part.length; i++) {
          cv.line(part[i - 1][0], part[i - 1][1], part[i][0], part[i][1], p.width, p.color);
        }
      }
      return;
    case "circle":
      cv.disc(p.cx, p.cy, p.r, p.fill);
      return;
    case "text":
      cv.text(p.x, p.y, p.text, p.scale, p.anchor, p.color, p.vertical);
      return;
  }
}

/** Draw every primitive of the scene, in order, onto a fresh canvas. */
export function rasterize(scene: Scene): Canvas {
  const cv = new Canvas(scene.width, scene.height, scene.background);
  for (const p of scene.prims) draw(cv, p);
  return cv;
}
