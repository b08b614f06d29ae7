import { describe, expect, it } from "vitest";
import { checkSeedDesign, runSeeds } from "./seed-report.js";
import { SEED_DESIGNS } from "./seeds.js";

/**
 * Every verdict of `tdplab seeds`, asserted. Unsafe designs must produce a
 * counterexample breaking the named invariant; safe ones must be explored
 * completely without a violation. No wall-clock budget is given, so machine
 * load cannot turn a verdict into "inconclusive"; the test timeout only guards
 * against a hang.
 */
const timeoutMs = 600_000;

describe("seed designs", () => {
  for (const d of SEED_DESIGNS) {
    it(`${d.thread} ${d.variant ?? "as merged"} on ${d.kernel} is ${d.expected}`, {
      timeout: timeoutMs,
    }, async () => {
      const row = await checkSeedDesign(d);
      expect(row.verdict, row.message ?? "").toBe(d.expected);
      if (d.expected === "safe") expect(row.complete).toBe(true);
      else {
        expect(row.replay).toMatch(/^tdp1\./);
        if (d.invariant) expect(d.invariant).toContain(row.invariant);
      }
      expect(row.matches).toBe(true);
    });
  }
});

describe("runSeeds", () => {
  it("runs a check two threads share once, and gives each thread its own row", async () => {
    let checks = 0;
    const designs = SEED_DESIGNS.filter((d) => d.thread === "002" || d.thread === "003");
    const rows = await runSeeds({ threads: ["002", "003"], shrink: false, onCheck: () => checks++ });
    expect(rows).toHaveLength(designs.length);
    const keys = new Set(
      designs.map((d) => `${d.scenario}|${d.kernel}|${d.variant}|${d.memoryModel ?? "sc"}`),
    );
    expect(keys.size).toBeLessThan(designs.length);
    expect(checks).toBe(keys.size);
    expect(rows.every((r) => r.matches)).toBe(true);
  }, 120_000);
});

describe("runSeeds and Ctrl-C", () => {
  it("stops after the design during which the signal fired, keeping the rows already done", async () => {
    const controller = new AbortController();
    const rows = await runSeeds({
      threads: ["004"],
      signal: controller.signal,
      onRow: (_r, i) => {
        if (i === 2) controller.abort();
      },
    });
    expect(rows.map((r) => r.variant)).toEqual(
      SEED_DESIGNS.filter((d) => d.thread === "004")
        .slice(0, 2)
        .map((d) => d.variant ?? "as-merged"),
    );
  });
});
