import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatSetting, parseParamValue } from "./params.js";
import { findSimScenario, SIM_SCENARIOS } from "./registry.js";
import type { SimScenario } from "./types.js";

const DIR = fileURLToPath(new URL(".", import.meta.url));
/** Modules of this directory that are machinery, not scenarios. */
const NOT_SCENARIOS = new Set(["types.ts", "params.ts", "registry.ts", "run-plan.ts"]);

function looksLikeScenario(v: unknown): v is SimScenario {
  const s = v as SimScenario;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof s.name === "string" &&
    Array.isArray(s.params) &&
    Array.isArray(s.metrics) &&
    typeof s.headline === "string" &&
    typeof s.run === "function"
  );
}

describe("SIM_SCENARIOS", () => {
  it("lists every SimScenario exported by a module of src/scenarios/sim", async () => {
    const files = readdirSync(DIR).filter(
      (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !NOT_SCENARIOS.has(f),
    );
    for (const f of files) {
      const mod = (await import(`./${f.replace(/\.ts$/, ".js")}`)) as Record<string, unknown>;
      for (const [name, v] of Object.entries(mod)) {
        if (looksLikeScenario(v)) {
          expect(
            SIM_SCENARIOS.includes(v),
            `${f} exports ${name} (${v.name}), missing from SIM_SCENARIOS`,
          ).toBe(true);
        }
      }
    }
  });

  it("names are unique and found by lookup", () => {
    const names = SIM_SCENARIOS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of SIM_SCENARIOS) expect(findSimScenario(s.name)).toBe(s);
    expect(findSimScenario("no-such-scenario")).toBeUndefined();
  });

  for (const s of SIM_SCENARIOS) {
    it(`${s.name}: headline is a metric, defaults are accepted values and print back as themselves`, () => {
      expect(s.metrics.map((m) => m.key)).toContain(s.headline);
      expect(new Set(s.metrics.map((m) => m.key)).size).toBe(s.metrics.length);
      for (const p of s.params) {
        const text = formatSetting(s, p.name, p.default);
        expect(parseParamValue("--set", p, text), `${p.name}=${text}`).toEqual(p.default);
      }
    });
  }
});
