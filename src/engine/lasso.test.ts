import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { findLasso } from "./lasso.js";
import type { StepRecord } from "./runtime.js";

const step = (task: number, obj = 0, fn = "f"): StepRecord => ({ task, kind: "read", obj, fn, step: "s" });
const steps = (spec: string): StepRecord[] => [...spec].map((c) => step(c.charCodeAt(0) - 65, 0, `fn${c}`));

/** Brute force: every (period, repeats) whose tail of repeats*period steps is periodic. */
function bruteBest(codes: readonly number[], minRepeats: number): { period: number; repeats: number } | null {
  const n = codes.length;
  let best: { period: number; repeats: number } | null = null;
  for (let p = 1; p <= n; p++) {
    for (let r = Math.floor(n / p); r >= minRepeats; r--) {
      const from = n - r * p;
      let ok = true;
      for (let j = from + p; j < n && ok; j++) ok = codes[j] === codes[j - p];
      if (ok) {
        if (best === null || r * p > best.repeats * best.period) best = { period: p, repeats: r };
        break;
      }
    }
  }
  return best;
}

describe("findLasso", () => {
  it("finds the cycle a run's tail repeats, after its stem", () => {
    const l = findLasso(steps(`XYZ${"ABAC".repeat(5)}`));
    expect(l).toMatchObject({
      fromStep: 3,
      period: 4,
      repeats: 5,
      tasks: [0, 1, 2],
      fns: ["fnA", "fnB", "fnC"],
    });
  });

  it("a tail that does not repeat has none", () => {
    expect(findLasso(steps("ABCDEFG"))).toBeNull();
    expect(findLasso(steps("ABCA"))).toBeNull();
    expect(findLasso([])).toBeNull();
  });

  it("prefers the cycle covering the most steps over a short repeat at the very end", () => {
    const l = findLasso(steps(`${"ABBC".repeat(4)}ABB`));
    // The tail "BB" repeats B twice, but ABBC, from the start, covers more.
    expect(l?.period).toBe(4);
    expect(l?.fromStep).toBe(3);
  });

  it("a step on another object or in another function is another step", () => {
    const a = [step(0, 1), step(0, 2), step(0, 1), step(0, 2)];
    expect(findLasso(a)?.period).toBe(2);
    expect(findLasso([step(0, 1), step(0, 2), step(0, 1), step(0, 3)])).toBeNull();
  });

  test.prop([fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 40 }), fc.integer({ min: 2, max: 4 })])(
    "covers as many steps as the best cycle brute force finds, with the shortest period among those",
    (codes, minRepeats) => {
      const l = findLasso(
        codes.map((c) => step(c)),
        minRepeats,
      );
      const b = bruteBest(codes, minRepeats);
      if (b === null) expect(l).toBeNull();
      else {
        expect(l).not.toBeNull();
        expect(l!.period * l!.repeats).toBe(b.period * b.repeats);
        expect(l!.period).toBe(b.period);
        expect(l!.fromStep).toBe(codes.length - b.period * b.repeats);
      }
    },
  );
});
