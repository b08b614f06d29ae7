import { describe, expect, it } from "vitest";
import type { Program } from "../engine/runtime.js";
import { type CostModel, DEFAULT_COSTS } from "../engine/sim/cost-model.js";
import { type SimOptions, type SimResult, simulate as simulateWith } from "../engine/sim/simulator.js";
import { list_add_rcu } from "../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../kernel/sim-view.js";
import { kvm_mmu_init_tdp_mmu } from "../mmu/tdp_mmu_invalidate.js";
import { tdp_mmu_root_set_owner } from "../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, populate } from "../mmu/testing.js";
import { kvm_mmu_unload } from "../mmu/vcpu.js";

/** simulate() with the kernel layer's view of tasks. */
const simulate = (p: Program, o: Omit<SimOptions, "kernel">): SimResult =>
  simulateWith(p, { kernel: kernelView, ...o });

/**
 * Scenario 1 (seed 002) in miniature: a vCPU drops the last reference to a fully populated root
 * (all 4K leaves) through kvm_mmu_unload(). v5.17 zaps the root inside the put, holding mmu_lock
 * for write; v5.18 (efd995dae5eb) marks it defunct and queues the zap on a worker. The VM is built
 * in setup; the vCPU, the kworker and the RCU callbacks all run the real model functions.
 */
function defunctRootZap(kernel: "v5.17" | "v5.18", ptes: number): Program {
  return ({ spawn }) => {
    const kvm = makeVm({ kernel, ptes, machine: simMachineConfig("none"), checks: false });
    kvm_mmu_init_tdp_mmu(kvm);
    const root = makeRoot(kvm, 1);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    for (let gfn = 0; gfn < kvm.geometry.maxGfn; gfn++) populate(kvm, root, gfn);
    const vcpu = makeVcpu(kvm, root);
    spawn("vcpu0", kvm_mmu_unload(vcpu));
  };
}

interface Outcome {
  readonly leaves: number;
  readonly vcpuNs: number;
  readonly result: SimResult;
}

function run(kernel: "v5.17" | "v5.18", ptes: number, costs: Partial<CostModel> = {}): Outcome {
  const result = simulate(defunctRootZap(kernel, ptes), {
    cpus: 4,
    costs,
    preemption: "none",
    binding: (n) => (n === "vcpu0" ? 0 : null),
    seed: 2,
  });
  const v = result.perTask.find((t) => t.name === "vcpu0")!;
  // The vCPU is out of the guest from its first step to its last: what A1 calls its block time.
  return { leaves: ptes ** 4, vcpuNs: v.doneNs! - v.firstStepNs!, result };
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
