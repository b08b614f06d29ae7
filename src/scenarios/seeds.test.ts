import { describe, expect, it } from "vitest";
import { checkSeedDesign } from "./seed-report.js";
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
