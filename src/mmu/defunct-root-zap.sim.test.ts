import { describe, expect, it } from "vitest";
import { type CostModel, DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import { type DefunctRootZapOutcome, defunctRootZap } from "../scenarios/sim/defunct-root-zap.js";

/**
 * Scenario 1 (seed 002) in miniature: a vCPU drops the last reference to a fully populated root
 * (all 4K leaves) through kvm_mmu_unload(). v5.17 zaps the root inside the put, holding mmu_lock
 * for write; v5.18 (efd995dae5eb) marks it defunct and queues the zap on a worker. The program
 * lives in src/scenarios/sim/defunct-root-zap.ts (also behind `tdplab simulate`).
 */

interface Outcome {
  readonly leaves: number;
  readonly vcpuNs: number;
  readonly result: DefunctRootZapOutcome["result"];
}

function run(kernel: "v5.17" | "v5.18", ptes: number, costs: Partial<CostModel> = {}): Outcome {
  const o = defunctRootZap({ kernel, ptesPerTable: ptes, rootLevel: 4 }, costs);
  // The vCPU is out of the guest from its first step to its last: what A1 calls its block time.
  return { leaves: o.metrics.leaves, vcpuNs: o.vcpuBlockedNs, result: o.result };
}

describe("defunct-root-zap (seed 002) on tiny tables", () => {
  const sizes = [2, 4, 8];
  const v517 = sizes.map((p) => run("v5.17", p));
  const v518 = sizes.map((p) => run("v5.18", p));

  it("both eras run to completion without violations, and free every page table", () => {
    for (const o of [...v517, ...v518]) {
      expect(o.result.violations).toEqual([]);
      expect(o.result.status).toBe("ok");
      const callbacks = o.result.perTask.filter((t) => t.name.startsWith("rcu_cb:"));
      // Every table of a full 4-level tree, root included, goes through call_rcu().
      const p = Math.round(o.leaves ** 0.25);
      expect(callbacks.length).toBe(1 + p + p * p + p * p * p);
    }
  });

  it("v5.17: the vCPU's block time grows with the populated SPTEs: ≈52 ns each plus a flush per table", () => {
    for (let i = 1; i < v517.length; i++) expect(v517[i].vcpuNs).toBeGreaterThan(v517[i - 1].vcpuNs);
    const a2 = DEFAULT_COSTS.spteReadNs + DEFAULT_COSTS.spteWriteNs;
    // Without the remote flush that 5.17's handle_removed_tdp_mmu_page() does per removed table,
    // what is left per leaf is the SPTE cost of A2 plus a share of the per-table bookkeeping.
    const noFlush = sizes.map((p) => run("v5.17", p, { tlbFlushNs: 0 }));
    const perLeaf = (noFlush[2].vcpuNs - noFlush[1].vcpuNs) / (noFlush[2].leaves - noFlush[1].leaves);
    expect(perLeaf).toBeGreaterThanOrEqual(a2);
    expect(perLeaf).toBeLessThan(2 * a2);
    // The rest is exactly one E1-priced flush per removed non-root table.
    sizes.forEach((p, i) => {
      expect(v517[i].vcpuNs - noFlush[i].vcpuNs).toBe((p + p * p + p * p * p) * DEFAULT_COSTS.tlbFlushNs);
    });
  });

  it("v5.18: the vCPU's block time does not depend on the root's size; the worker does the zap", () => {
    const base = v518[0].vcpuNs;
    for (const o of v518) expect(o.vcpuNs).toBe(base);
    for (let i = 0; i < sizes.length; i++) expect(v518[i].vcpuNs).toBeLessThan(v517[i].vcpuNs);
    const a2 = DEFAULT_COSTS.spteReadNs + DEFAULT_COSTS.spteWriteNs;
    const worker = v518[2].result.perTask.find((t) => t.name.startsWith("kworker:"))!;
    expect(worker.busyNs).toBeGreaterThanOrEqual(v518[2].leaves * a2);
    expect(worker.busyNs).toBeLessThan(2 * v518[2].leaves * a2);
  });

  it("prints the figures", () => {
    const rows = sizes.map((p, i) => ({
      ptes: p,
      leaves: v517[i].leaves,
      v517_vcpu_ns: v517[i].vcpuNs,
      v518_vcpu_ns: v518[i].vcpuNs,
      v518_virtual_ns: v518[i].result.virtualNs,
    }));
    console.table(rows);
    expect(rows.length).toBe(3);
  });
});
