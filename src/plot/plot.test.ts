import { Resvg } from "@resvg/resvg-js";
import { describe, expect, it } from "vitest";
import { formatSize } from "../scenarios/sim/params.js";
import { binaryTicks, decades, formatTick, wantsLog } from "./axes.js";
import { renderLinePlot } from "./index.js";
import { type LinePlotSpec, PALETTE } from "./spec.js";

const GiB = 2 ** 30;
const sizes = [1, 16, 256, 4096, 65536].map((g) => g * GiB);
const spec: LinePlotSpec = {
  title: "defunct-root-zap: vcpuBlockedMs vs guestSize",
  subtitle: 'cpus=4 <&> "quoted"',
  xLabel: "guestSize",
  yLabel: "vcpuBlockedMs [ms]",
  x: { kind: "numeric", values: sizes, format: formatSize, binary: true },
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

/** The `d` of each series' line, by stroke colour (Observable Plot draws one <g aria-label="line"> per line mark). */
function linePaths(svg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of svg.matchAll(
    /<g [^>]*stroke="(#[0-9a-f]{6})"[^>]*aria-label="line"[^>]*><path d="([^"]*)"/g,
  )) {
    out.set(m[1], m[2]);
  }
  return out;
}

describe("SVG (Observable Plot)", () => {
  const svg = renderLinePlot(spec, "svg") as string;

  it("is a standalone, well-formed SVG document that escapes text", () => {
    checkXml(svg.replace(/^<\?xml[^>]*\?>\n/, ""));
    expect(svg).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/,
    );
    expect(svg).toContain("cpus=4 &lt;&amp;&gt;");
    expect(svg).toContain(">defunct-root-zap: vcpuBlockedMs vs guestSize</text>");
  });

  it("draws one line per series in the palette's colours, broken where a value is missing", () => {
    const paths = linePaths(svg);
    expect([...paths.keys()]).toEqual([PALETTE[0], PALETTE[1]]);
    expect(paths.get(PALETTE[0])!.match(/M/g)).toHaveLength(1);
    // The missing async value splits its line into two sub-paths.
    expect(paths.get(PALETTE[1])!.match(/M/g)).toHaveLength(2);
    // A dot per value present: 5 + 4.
    expect(svg.match(/<circle /g)!.length).toBeGreaterThanOrEqual(9);
  });

  it("a size axis is binary and logarithmic (1GiB … 64TiB); a y axis spanning decades is log10", () => {
    for (const t of ["1GiB", "16GiB", "256GiB", "4TiB", "64TiB"]) expect(svg).toContain(`>${t}</text>`);
    expect(svg).toContain(">guestSize (log scale)</text>");
    expect(svg).toContain(">vcpuBlockedMs [ms] (log scale)</text>");
    for (const t of ["0.01", "1", "100", "10000", "1e6"]) expect(svg).toContain(`>${t}</text>`);
  });

  it("a narrow range stays linear and starts at zero; categories are spread evenly", () => {
    const lin = renderLinePlot(
      {
        title: "t",
        xLabel: "preemption",
        yLabel: "y",
        x: { kind: "category", values: ["none", "voluntary", "full"] },
        series: [{ name: "a", points: ["none", "voluntary", "full"].map((x, i) => ({ x, y: 10 + i })) }],
      },
      "svg",
    ) as string;
    expect(lin).not.toContain("log scale");
    expect(lin).toContain(">0</text>");
    for (const c of ["none", "voluntary", "full"]) expect(lin).toContain(`>${c}</text>`);
  });

  it("the XML checker itself rejects broken documents", () => {
    expect(() => checkXml("<svg><g></svg>")).toThrow();
    expect(() => checkXml("<svg>a & b</svg>")).toThrow();
    expect(() => checkXml('<svg x="1"></svg>')).not.toThrow();
  });

  it("is deterministic", () => {
    expect(renderLinePlot(spec, "svg")).toBe(svg);
  });
});

describe("PNG (resvg)", () => {
  const png = renderLinePlot(spec, "png") as Buffer;

  it("is a PNG of the SVG's size", () => {
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.subarray(12, 16).toString("latin1")).toBe("IHDR");
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1100, 680]);
  });

  it("draws the series' colours and the background", () => {
    // The same rasteriser on the same SVG, read back as pixels.
    const img = new Resvg(renderLinePlot(spec, "svg") as string, { background: "#fafafa" }).render();
    const px = img.pixels;
    const count = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] === r && px[i + 1] === g && px[i + 2] === b) n++;
      return n;
    };
    expect(count(PALETTE[0])).toBeGreaterThan(500);
    expect(count(PALETTE[1])).toBeGreaterThan(100);
    expect(count("#fafafa")).toBeGreaterThan(img.width * img.height * 0.5);
  });
});

describe("axes", () => {
  it("log only when positive values span more than 100x", () => {
    expect(wantsLog([1, 1000])).toBe(true);
    expect(wantsLog([1, 100])).toBe(false);
    expect(wantsLog([0, 1000])).toBe(false);
    expect(wantsLog([5])).toBe(false);
  });
  it("binary ticks: the swept powers of two, or every k-th power of two when there are many", () => {
    expect(binaryTicks(sizes).map(formatSize)).toEqual(["1GiB", "16GiB", "256GiB", "4TiB", "64TiB"]);
    const many = binaryTicks([3 * GiB, 5 * GiB, 7 * 2 ** 40]);
    expect(many.every((t) => Number.isInteger(Math.log2(t)))).toBe(true);
    expect(many.length).toBeLessThanOrEqual(10);
    expect(many[0]).toBeLessThanOrEqual(3 * GiB);
    expect(many.at(-1)).toBeGreaterThanOrEqual(7 * 2 ** 40);
  });
  it("decades cover the data", () => {
    expect(decades([0.05, 900])).toEqual([0.01, 0.1, 1, 10, 100, 1000]);
  });
  it("tick labels", () => {
    expect(formatTick(0)).toBe("0");
    expect(formatTick(1e6)).toBe("1e6");
    expect(formatTick(2.5e-4)).toBe("2.5e-4");
    expect(formatTick(12345.678)).toBe("12350");
    expect(formatTick(0.125)).toBe("0.125");
  });
});
