import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { formatSize } from "../scenarios/sim/params.js";
import { GLYPH_ADVANCE, glyphRows } from "./font.js";
import { renderLinePlot } from "./index.js";
import { type LinePlotSpec, layoutLinePlot, PALETTE } from "./line-plot.js";
import { crc32 } from "./png.js";
import { parseColor, rasterize } from "./raster.js";
import { formatTick, numericScale, wantsLog } from "./scale.js";

const GiB = 2 ** 30;
const sizes = [1, 16, 256, 4096, 65536].map((g) => g * GiB);
const spec: LinePlotSpec = {
  title: "defunct-root-zap: vcpuBlockedMs vs guestSize",
  subtitle: 'cpus=4 <&> "quoted"',
  xLabel: "guestSize",
  yLabel: "vcpuBlockedMs [ms]",
  x: { kind: "numeric", values: sizes, format: formatSize },
  series: [
    { name: "sync", points: sizes.map((x) => ({ x, y: (x / 4096) * 52e-6 })) },
    { name: "async", points: sizes.map((x, i) => ({ x, y: i === 2 ? null : 0.05 + i / 100 })) },
  ],
};

/**
 * A strict enough XML well-formedness check for what the SVG writer emits: balanced tags, quoted
 * attributes, no raw '<' or '&' in text or attribute values.
 */
function checkXml(doc: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  let m: RegExpExecArray | null;
  let rootSeen = false;
  for (m = re.exec(doc); m !== null; m = re.exec(doc)) {
    if (m[6] !== undefined) throw new Error(`stray '<' at ${m.index}: ${doc.slice(m.index, m.index + 40)}`);
    const text = m[5] ?? m[3] ?? "";
    for (const amp of text.matchAll(/&/g)) {
      if (!/^&(amp|lt|gt|quot|apos|#\d+);/.test(text.slice(amp.index))) throw new Error(`raw '&' in ${text}`);
    }
    if (m[5] !== undefined) {
      if (stack.length === 0 && m[5].trim() !== "") throw new Error("text outside the root element");
      continue;
    }
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
    } else if (!selfClose) {
      if (stack.length === 0) {
        if (rootSeen) throw new Error("two root elements");
        rootSeen = true;
      }
      stack.push(name);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (!rootSeen) throw new Error("no root element");
}

interface Png {
  width: number;
  height: number;
  pixels: Uint8Array;
  chunks: string[];
}

/** Decode an 8-bit RGB, non-interlaced PNG with filter type 0 rows, checking every CRC. */
function decodePng(buf: Buffer): Png {
  expect([...buf.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let off = 8;
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.subarray(off + 4, off + 8).toString("latin1");
    const data = buf.subarray(off + 8, off + 8 + len);
    expect(buf.readUInt32BE(off + 8 + len)).toBe(crc32(buf.subarray(off + 4, off + 8 + len)));
    chunks.push(type);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([...data.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
    }
    if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (1 + 3 * width));
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (1 + 3 * width)]).toBe(0);
    pixels.set(raw.subarray(y * (1 + 3 * width) + 1, (y + 1) * (1 + 3 * width)), y * 3 * width);
  }
  return { width, height, pixels, chunks };
}

describe("SVG", () => {
  it("is well-formed XML, escapes text, and has one path per series", () => {
    const svg = renderLinePlot(spec, "svg") as string;
    checkXml(svg);
    expect(svg).toContain("&lt;&amp;&gt; &quot;quoted&quot;");
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toMatch(/<path class="series" data-series="sync" d="M[\d.]+ [\d.]+( L[\d.]+ [\d.]+){4}"/);
    // The missing async value splits its line into two sub-paths.
    expect(svg).toMatch(/<path class="series" data-series="async" d="M[^"M]+ M[^"M]+"/);
    expect(svg).toContain(">64TiB</text>");
    expect(svg).toContain("guestSize (log scale)");
    expect(svg).toContain("vcpuBlockedMs [ms] (log scale)");
  });

  it("the checker itself rejects broken documents", () => {
    expect(() => checkXml("<svg><g></svg>")).toThrow();
    expect(() => checkXml("<svg>a & b</svg>")).toThrow();
    expect(() => checkXml('<svg x="1"></svg>')).not.toThrow();
  });
});

describe("PNG", () => {
  it("has a valid signature, IHDR, IDAT and IEND, and inflates to width x height RGB", () => {
    const png = decodePng(renderLinePlot(spec, "png") as Buffer);
    expect(png.chunks).toEqual(["IHDR", "IDAT", "IEND"]);
    expect([png.width, png.height]).toEqual([1100, 680]);
  });

  it("draws the series' colours where the lines are, and background elsewhere", () => {
    const scene = layoutLinePlot(spec);
    const png = decodePng(renderLinePlot(spec, "png") as Buffer);
    const px = (x: number, y: number) => [
      ...png.pixels.subarray(3 * (y * png.width + x), 3 * (y * png.width + x) + 3),
    ];
    const lines = scene.prims.filter((p) => p.kind === "polyline");
    expect(lines).toHaveLength(2);
    lines.forEach((l, i) => {
      // The middle of each drawn segment carries the series colour.
      const [[x1, y1], [x2, y2]] = l.parts[0];
      expect(px(Math.floor((x1 + x2) / 2), Math.floor((y1 + y2) / 2))).toEqual(parseColor(PALETTE[i]));
    });
    expect(px(2, 2)).toEqual(parseColor("#fafafa"));
    // Text is drawn: the title row holds ink pixels.
    const title = scene.prims.find((p) => p.kind === "text")!;
    let ink = 0;
    for (let x = 0; x < png.width; x++) if (px(x, title.y - 10)[0] < 100) ink++;
    expect(ink).toBeGreaterThan(50);
  });

  it("CRC-32 matches the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});

describe("rasteriser", () => {
  it("a vertical label reads upwards with its baseline on the given column", () => {
    const scene = { width: 40, height: 60, background: "#ffffff", prims: [] };
    const cv = rasterize(scene);
    cv.text(20, 50, "L", 1, "start", "#000000", true);
    // 'L' is a vertical bar (rows 0-6 of column 0) and a foot (row 6). Turned: the bar lies along
    // row y=49 to the left of the column, the foot stands just left of the baseline column.
    const dark = (x: number, y: number) => cv.pixel(x, y)[0] === 0;
    expect(dark(13, 49)).toBe(true); // top of the bar (row 0) is 7 pixels left of the baseline
    expect(dark(19, 49)).toBe(true);
    expect(dark(19, 45)).toBe(true); // the foot runs upwards along the baseline column
    expect(dark(13, 45)).toBe(false);
  });

  it("every printable ASCII character has a glyph; others fall back or get a box", () => {
    for (let c = 33; c < 127; c++) expect(glyphRows(String.fromCharCode(c)).some((r) => r !== 0)).toBe(true);
    expect(glyphRows(" ").every((r) => r === 0)).toBe(true);
    expect(glyphRows("µ")).toEqual(glyphRows("u"));
    expect(glyphRows("€")[0]).toBe(0x1f);
    expect(GLYPH_ADVANCE).toBe(6);
  });
});

describe("scales", () => {
  it("log only when positive values span more than 100x", () => {
    expect(wantsLog([1, 1000])).toBe(true);
    expect(wantsLog([1, 100])).toBe(false);
    expect(wantsLog([0, 1000])).toBe(false);
    expect(wantsLog([5])).toBe(false);
  });
  it("linear ticks are 1-2-5 steps covering the data and start at zero when asked", () => {
    const s = numericScale([3, 97], { log: false, from: 0, to: 100, zero: true });
    expect(s.ticks.map((t) => t.value)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(s.map(0)).toBe(0);
    expect(s.map(100)).toBe(100);
  });
  it("log ticks are decades; given tick values are kept", () => {
    const s = numericScale([0.05, 900], { log: true, from: 0, to: 100 });
    expect(s.ticks.map((t) => t.label)).toEqual(["0.01", "0.1", "1", "10", "100", "1000"]);
    const g = numericScale(sizes, { log: true, from: 0, to: 100, tickValues: sizes, format: formatSize });
    expect(g.ticks.map((t) => t.label)).toEqual(["1GiB", "16GiB", "256GiB", "4TiB", "64TiB"]);
    expect(g.ticks[1].px - g.ticks[0].px).toBeCloseTo(g.ticks[2].px - g.ticks[1].px, 9);
  });
  it("tick labels", () => {
    expect(formatTick(0)).toBe("0");
    expect(formatTick(1e6)).toBe("1e6");
    expect(formatTick(2.5e-4)).toBe("2.5e-4");
    expect(formatTick(12345.678)).toBe("12350");
    expect(formatTick(0.125)).toBe("0.125");
  });
});
