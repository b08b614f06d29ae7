import { describe, expect, it } from "vitest";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import type { SimResult } from "../engine/sim/simulator.js";
import { defunctRootZap } from "../scenarios/sim/defunct-root-zap.js";
import { buildPopulatedVm } from "../scenarios/sim/populated-vm.js";
import { subtreePages } from "./compressed.js";
import { peekLeaf } from "./testing.js";

/**
 * The compressed tree against the materialised one: the same teardown, step for step. Object and
 * task *names* differ (pages are numbered in the order they are built), so tasks are compared by
 * what they did and when.
 */
function shape(r: SimResult) {
  return {
    status: r.status,
    virtualNs: r.virtualNs,
    events: r.events,
    steps: r.stats.steps,
    contextSwitches: r.stats.contextSwitches,
    gracePeriods: r.stats.gracePeriods,
    tasks: r.perTask.map((t) => ({
      lane: t.lane,
      cpu: t.cpu,
      busyNs: t.busyNs,
      blockedNs: t.blockedNs,
      spawnNs: t.spawnNs,
      firstStepNs: t.firstStepNs,
      doneNs: t.doneNs,
      steps: t.steps,
    })),
  };
}

describe("compressed page tables", () => {
  for (const kernel of ["v5.17", "v5.18"] as const) {
    it(`${kernel}, 1 GiB: materialised and compressed runs give identical virtual times and event counts`, () => {
      const mat = defunctRootZap({ kernel, guestSize: 2 ** 30, materialise: true });
      const cmp = defunctRootZap({ kernel, guestSize: 2 ** 30, materialise: false });
      expect(mat.metrics.summarisedBlocks).toBe(0);
      // 511 of the 512 last-level tables are stood for by a recording of the first one.
      expect(cmp.metrics.summarisedBlocks).toBe(511);
      expect(shape(cmp.result)).toEqual(shape(mat.result));
      const { summarisedBlocks: _a, ...m } = mat.metrics;
      const { summarisedBlocks: _b, ...c } = cmp.metrics;
      expect(c).toEqual(m);
      expect(cmp.result.stats.strayWakes).toBe(0);
    }, 60_000);
  }

  it("also on a 5-level tree with small tables and a partial last table", () => {
    for (const kernel of ["v5.17", "v5.18"] as const) {
      const p = { kernel, rootLevel: 5 as const, ptesPerTable: 8, guestSize: 4096 * (8 ** 4 + 8 ** 3 + 5) };
      const mat = defunctRootZap({ ...p, materialise: true });
      const cmp = defunctRootZap({ ...p, materialise: false });
      expect(cmp.metrics.summarisedBlocks).toBeGreaterThan(0);
      expect(shape(cmp.result)).toEqual(shape(mat.result));
      expect(cmp.metrics.pageTablesFreed).toBe(mat.metrics.pageTables);
    }
  });

  it("builds lazily: a leaf read through the tree has the value populate() writes", () => {
    let same = 0;
    runProgram(
      () => {
        const o = {
          kernel: "v5.18",
          preemption: "none",
          rootLevel: 4,
          ptesPerTable: 8,
          runningVcpus: 0,
        } as const;
        const a = buildPopulatedVm({ ...o, guestSize: 4096 * 600, materialise: true });
        const b = buildPopulatedVm({ ...o, guestSize: 4096 * 600, materialise: false });
        for (const gfn of [0, 1, 7, 8, 63, 64, 511, 512, 599, 600, 4095]) {
          if (JSON.stringify(peekLeaf(a.kvm, a.root, gfn)) === JSON.stringify(peekLeaf(b.kvm, b.root, gfn)))
            same++;
        }
        expect(b.pageTables).toBe(a.pageTables);
        expect(b.kvm.tdp_mmu_pages.v).toBe(a.kvm.tdp_mmu_pages.v);
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(same).toBe(11);
  });

  it("counts the page tables of partial subtrees", () => {
    const kvm = { geometry: { ptesPerTable: 8 } } as Parameters<typeof subtreePages>[0];
    expect(subtreePages(kvm, 1, 8)).toBe(1);
    expect(subtreePages(kvm, 2, 64)).toBe(9);
    expect(subtreePages(kvm, 2, 9)).toBe(3);
    expect(subtreePages(kvm, 3, 65)).toBe(1 + 9 + 2);
    expect(subtreePages(kvm, 3, 0)).toBe(0);
  });
});
