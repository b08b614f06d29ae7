import { describe, expect, it } from "vitest";
import { DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import { mmuStress, runMmuStress } from "./mmu-stress.js";
import type { SimParams } from "./types.js";

/**
 * Scenario 5b: mmu_stress_test. The reset stage is where the eras part: v5.17's last put zaps the
 * root synchronously (so the reset grows with memory: A1), v5.18 hands it to the worker (the reset is
 * short whatever the size), and 6.4+ keeps the root, so run2 needs no fault at all.
 */

const defaults: SimParams = Object.fromEntries(mmuStress.params.map((p) => [p.name, p.default]));
const MiB = 2 ** 20;
const run = (over: Record<string, number | string>) => runMmuStress({ ...defaults, ...over });
type M = Record<string, number | null>;

describe("mmu-stress (mmu_stress_test)", () => {
  const small = { memory: 8 * MiB, slotSize: 2 * MiB, vcpus: 2 };
  const pages = (8 * MiB) / 4096;
  const e517 = run({ ...small, kernel: "v5.17" });
  const e518 = run({ ...small, kernel: "v5.18" });
  const e615 = run({ ...small, kernel: "v6.15" });

  it("every stage completes in order, on every era", () => {
    for (const o of [e517, e518, e615]) {
      const r = o.results![0];
      expect(r.status, o.kernel).toBe("ok");
      const spans = ["run1", "reset", "run2", "ro", "rw", "delete", "munmap", "exit"].map((p) => {
        const t = r.perTask.find((x) => x.name === `main:${p}`)!;
        return [t.firstStepNs!, t.doneNs!] as const;
      });
      for (let i = 1; i < spans.length; i++)
        expect(spans[i][0], o.kernel).toBeGreaterThanOrEqual(spans[i - 1][1]);
    }
  });

  it("run1 writes every page once: one fault each, on resident host pages (no E6 host page fault)", () => {
    const m = e615.metrics as M;
    expect(m.run1Faults).toBeGreaterThanOrEqual(pages);
    const perPage = ((m.run1Ms as number) * 1e6 * 2) / pages; // two vCPUs in parallel
    expect(perPage).toBeLessThan(DEFAULT_COSTS.hostPageFaultNs / 4);
  });

  it("reset: v5.17's last put zaps the root under the write lock; v5.18 and 6.4+ return at once", () => {
    const r17 = e517.metrics.resetMs as number;
    expect(r17).toBeGreaterThan(pages * 40e-6);
    expect(e518.metrics.resetMs as number).toBeLessThan(r17 / 100);
    expect(e615.metrics.resetMs as number).toBeLessThan(r17 / 100);
    expect(e518.metrics.workerZapMs as number).toBeGreaterThan(pages * 40e-6);
    const big = run({ ...small, memory: 16 * MiB, kernel: "v5.17", stages: "reset" }).metrics
      .resetMs as number;
    expect(big / r17).toBeGreaterThan(1.8);
    expect(big / r17).toBeLessThan(2.2);
  });

  it("run2: before 6.4 the vCPUs refault every page into a new root; with persistent roots none", () => {
    expect(e517.metrics.run2Faults).toBeGreaterThanOrEqual(pages);
    expect(e518.metrics.run2Faults).toBeGreaterThanOrEqual(pages);
    expect(e615.metrics.run2Faults).toBe(0);
    expect(e615.metrics.rootsAllocated).toBe(1);
    expect(e517.metrics.rootsAllocated).toBe(2);
    expect(e615.metrics.run2Ms as number).toBeLessThan((e517.metrics.run2Ms as number) / 5);
  });

  it("mprotect RO: the reads fault back in read-only and every write then gets -EFAULT; RW: writes fault again", () => {
    const m = e615.metrics as M;
    expect(m.roFaults).toBeGreaterThanOrEqual(2 * pages);
    expect(m.rwFaults).toBeGreaterThanOrEqual(pages);
  });

  it("prefaulted multi-GiB guests (compressed root): v5.17's reset costs ~52 ns per 4K SPTE, v5.18's does not", () => {
    const big = {
      populate: "prefault",
      stages: "reset",
      memory: 64 * 2 ** 30,
      slotSize: 2 * 2 ** 30,
      vcpus: 4,
    };
    const leaves = (64 * 2 ** 30) / 4096;
    const s = run({ ...big, kernel: "v5.17" }).metrics as M;
    const a = run({ ...big, kernel: "v5.18" }).metrics as M;
    const perLeaf = ((s.resetMs as number) * 1e6) / leaves;
    const a2 = DEFAULT_COSTS.spteReadNs + DEFAULT_COSTS.spteWriteNs;
    expect(perLeaf).toBeGreaterThanOrEqual(a2);
    expect(perLeaf).toBeLessThan(1.2 * a2);
    expect(s.summarisedBlocks as number).toBeGreaterThan(0);
    expect(a.resetMs as number).toBeLessThan(1);
  });

  it("refuses sizes it cannot step through, and says how to get there", () => {
    expect(() => run({ memory: 4 * 2 ** 30 })).toThrow(/populate=prefault stages=reset/);
  });
});
