import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_COSTS, FITTED_TO } from "../../engine/sim/cost-model.js";
import { type CalibrationRow, compare, FIGURES, roleOf } from "./calibration.js";
import { calibrationMarkdown, duration, ratioText, scenarioFiguresMarkdown } from "./calibration-format.js";

/** The id and "use" column of every row of docs/published-figures.md's tables. */
function documentedFigures(): Map<string, string> {
  const doc = readFileSync(new URL("../../../docs/published-figures.md", import.meta.url), "utf8");
  const out = new Map<string, string>();
  for (const line of doc.split("\n")) {
    const m = /^\| ([A-Z]\d+) \|.*\| ([^|]+) \|$/.exec(line);
    if (m) out.set(m[1], m[2].trim());
  }
  return out;
}

describe("calibration shown, not claimed", () => {
  it("lists every figure of docs/published-figures.md, and only those", () => {
    const doc = documentedFigures();
    expect(doc.size).toBeGreaterThan(8);
    expect(new Set(FIGURES.map((f) => f.id))).toEqual(new Set(doc.keys()));
  });

  it("a figure is calibration exactly when a price was fitted to it, as the doc's use column says", () => {
    const doc = documentedFigures();
    for (const f of FIGURES) {
      const use = doc.get(f.id)!;
      const role = roleOf(f);
      const expected = use.startsWith("C")
        ? "calibration"
        : use.startsWith("V")
          ? "validation"
          : use.startsWith("prior")
            ? "prior"
            : "none";
      expect(role, `${f.id} (${f.part}): doc says ${use}`).toBe(expected);
    }
  });

  it("no price is fitted to a figure the table then counts as validation", () => {
    const ids = new Set(FIGURES.map((f) => f.id));
    for (const [price, fitted] of Object.entries(FITTED_TO)) {
      for (const id of fitted) {
        expect(ids.has(id), `${price} fitted to unknown figure ${id}`).toBe(true);
        for (const f of FIGURES.filter((x) => x.id === id)) expect(roleOf(f)).toBe("calibration");
      }
    }
    // Every price has an entry, so a new price cannot slip in without saying what it was fitted to.
    const priced = Object.keys(DEFAULT_COSTS).filter((k) => k !== "extra");
    expect(Object.keys(FITTED_TO).sort()).toEqual(priced.sort());
  });

  it("compares points within 2x, bounds by side and ranges by inclusion", () => {
    expect(compare({ kind: "point", ns: 100 }, 190)).toEqual({ ratio: 1.9, agrees: true });
    expect(compare({ kind: "point", ns: 100 }, 210).agrees).toBe(false);
    expect(compare({ kind: "at-least", ns: 100 }, 99).agrees).toBe(false);
    expect(compare({ kind: "at-most", ns: 100 }, 99)).toEqual({ ratio: 0.99, agrees: true });
    expect(compare({ kind: "range", lo: 10, hi: 20 }, 15)).toEqual({ ratio: 1, agrees: true });
    expect(compare({ kind: "range", lo: 10, hi: 20 }, 40)).toEqual({ ratio: 2, agrees: false });
  });

  it("the cheap measurements give the model's numbers", () => {
    const m = (id: string) => FIGURES.find((f) => f.id === id)!.measure!({});
    const c = DEFAULT_COSTS;
    expect(m("E1")).toBe(c.tlbFlushNs + 64 * c.tlbFlushPerRunningVcpuNs + c.rmwNs);
    expect(m("E5")).toBe(c.ptAllocNs);
    const gp = m("E3");
    expect(gp).toBeGreaterThanOrEqual(c.rcuGracePeriodNs.min);
    expect(gp).toBeLessThanOrEqual(c.rcuGracePeriodNs.max);
    // A calibration figure follows its price: halve the per-vCPU IPI and the flush roughly halves.
    const half = FIGURES.find((f) => f.id === "E1")!.measure!({ tlbFlushPerRunningVcpuNs: 550 });
    expect(half).toBe(c.tlbFlushNs + 64 * 550 + c.rmwNs);
  });

  it("formats rows: published bounds, durations, ratios, roles and the agreement count", () => {
    const rows: CalibrationRow[] = [
      {
        id: "A1",
        part: "sync",
        role: "validation",
        published: { kind: "at-least", ns: 900e9 },
        how: "run",
        simulatedNs: 929.7e9,
        ratio: 1.033,
        agrees: true,
        fittedPrices: [],
      },
      {
        id: "A2",
        part: "entry",
        role: "calibration",
        published: { kind: "point", ns: 7e9 },
        how: "run",
        simulatedNs: 7.26e9,
        ratio: 1.0376,
        agrees: true,
        fittedPrices: ["spteReadNs", "spteWriteNs"],
      },
      {
        id: "E4",
        part: "rmw",
        role: "prior",
        published: null,
        how: "-",
        simulatedNs: null,
        ratio: null,
        agrees: null,
        fittedPrices: [],
      },
    ];
    const md = calibrationMarkdown(rows);
    expect(md).toContain("| A1 | sync | ≥ 900 s | 929.7 s | 1.03 | yes | validation | run |");
    expect(md).toContain(
      "| A2 | entry | ≈ 7 s | 7.26 s | 1.04 | yes | calibration (fitted: spteReadNs, spteWriteNs) |",
    );
    expect(md).toContain("| E4 | rmw | - | - | - | - | prior |");
    expect(md).toContain("Validation figures (no price fitted to them): 1 of 1 agree.");
    expect(md).toContain("Calibration figures still reproduced: 1 of 1.");
    expect(duration(76)).toBe("76 ns");
    expect(duration(71_410)).toBe("71.41 µs");
    expect(ratioText(7.6e-7)).toBe("7.6e-7");
  });

  it("lists per scenario the figures its runs compute, with ratio and role, and says so when there are none", () => {
    const row = (id: string, how: string, role: "calibration" | "validation", ratio: number) => ({
      id,
      part: `figure ${id}`,
      role,
      published: null,
      how,
      simulatedNs: 1,
      ratio,
      agrees: true,
      fittedPrices: [],
    });
    const md = scenarioFiguresMarkdown(
      [
        row("A1", "defunct-root-zap --kernel v5.17 --set guestSize=64TiB: vcpuBlocked", "validation", 1.03),
        row("E6", "dirty-log --set vcpus=1: populate time", "calibration", 1),
        row("A4", "the A1 synchronous run", "validation", 1.04),
      ],
      ["defunct-root-zap", "dirty-log", "fast-zap-root-load"],
    );
    expect(md).toContain("| defunct-root-zap | A1 figure A1 (1.03, validation) |");
    expect(md).toContain("| dirty-log | E6 figure E6 (1, calibration) |");
    expect(md).toContain("| fast-zap-root-load | none: no published figure is computed by it yet |");
  });
});
