import { describe, expect, it } from "vitest";
import { checkSeedDesign } from "./seed-report.js";
import { SEED_DESIGNS } from "./seeds.js";

/**
 * Every verdict of `tdplab seeds`, asserted. Unsafe designs must produce a
 * counterexample breaking the named invariant; safe ones must be explored
 * completely without a violation. TDPLAB_SEED_BUDGET_S raises the per-design
 * budget (default 150 s, for loaded CI machines; safe designs need complete exploration).
 */
const budgetMs = Number(process.env.TDPLAB_SEED_BUDGET_S ?? 150) * 1000;

describe("seed designs", () => {
  for (const d of SEED_DESIGNS) {
    it(`${d.thread} ${d.variant ?? "as merged"} on ${d.kernel} is ${d.expected}`, {
      timeout: budgetMs + 60_000,
    }, async () => {
      const row = await checkSeedDesign(d, { timeLimitMs: budgetMs });
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
