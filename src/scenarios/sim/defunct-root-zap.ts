import type { Program } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { list_add_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, populate } from "../../mmu/testing.js";
import type { Kvm } from "../../mmu/types.js";
import { kvm_mmu_unload } from "../../mmu/vcpu.js";

/**
 * Scenario 1 (seed 002), timed: a vCPU drops the last reference to a populated root through
 * kvm_mmu_unload(). v5.17 zaps the root inside the put, holding mmu_lock for write, so the vCPU is
 * out of the guest for the whole zap; v5.18 (efd995dae5eb) marks it defunct and queues the zap on a
 * worker. The VM and its tree are built in setup (materialised: one object per SPTE word); the vCPU,
 * the kworker and the RCU callbacks all run the real model functions.
 */

export type DefunctRootZapKernel = "v5.17" | "v5.18";

export interface DefunctRootZapParams {
  readonly kernel: DefunctRootZapKernel;
  /** Entries per page table (the kernel's is 512; tiny tables keep the tree materialisable). */
  readonly ptesPerTable: number;
  readonly rootLevel: 4 | 5;
  /** Fraction of the 4K leaves populated, from gfn 0 upwards (default 1). */
  readonly fill?: number;
  /** Host CPUs of the simulated machine (default 4). */
  readonly cpus?: number;
}

export interface DefunctRootZapMetrics {
  /** First to last step of the vCPU: the time it is out of the guest (A1's block time). */
  readonly vcpuBlockedMs: number;
  /** CPU time of the kworker that zapped the root, or null when no worker ran (the sync zap). */
  readonly workerZapMs: number | null;
  /** Populated 4K leaves. */
  readonly leaves: number;
  /** Page tables of the tree, root included. */
  readonly pageTables: number;
  readonly remoteTlbFlushes: number;
  readonly virtualNs: number;
  readonly events: number;
}

export interface DefunctRootZapRun {
  readonly label: "sync" | "async";
  readonly kernel: DefunctRootZapKernel;
  readonly params: Required<DefunctRootZapParams>;
  readonly metrics: DefunctRootZapMetrics;
}

/** The run together with the raw simulator result (for tests that look at tasks). */
export interface DefunctRootZapOutcome extends DefunctRootZapRun {
  /** vcpuBlockedMs in exact virtual nanoseconds. */
  readonly vcpuBlockedNs: number;
  readonly result: SimResult;
}

/** Number of leaves a parameter set populates. */
export function defunctRootZapLeaves(
  p: Pick<DefunctRootZapParams, "ptesPerTable" | "rootLevel" | "fill">,
): number {
  return Math.round((p.fill ?? 1) * p.ptesPerTable ** p.rootLevel);
}

/** The program: setup builds the VM and the populated root, then spawns the vCPU. */
function program(p: Required<DefunctRootZapParams>, built: { kvm?: Kvm; pageTables?: number }): Program {
  return ({ spawn }) => {
    const kvm = makeVm({
      kernel: p.kernel,
      ptes: p.ptesPerTable,
      rootLevel: p.rootLevel,
      machine: simMachineConfig("none"),
      checks: false,
    });
    kvm_mmu_init_tdp_mmu(kvm);
    const root = makeRoot(kvm, 1);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    const leaves = defunctRootZapLeaves(p);
    for (let gfn = 0; gfn < leaves; gfn++) populate(kvm, root, gfn);
    built.kvm = kvm;
    built.pageTables = kvm.pages.size;
    spawn("vcpu0", kvm_mmu_unload(makeVcpu(kvm, root)));
  };
}

/** Run the scenario once on the simulator. Deterministic: same parameters and costs, same result. */
export function defunctRootZap(
  params: DefunctRootZapParams,
  costs: Partial<CostModel> = {},
): DefunctRootZapOutcome {
  const p: Required<DefunctRootZapParams> = { fill: 1, cpus: 4, ...params };
  if (!(p.fill >= 0 && p.fill <= 1)) throw new RangeError(`fill must be in [0, 1], got ${p.fill}`);
  const built: { kvm?: Kvm; pageTables?: number } = {};
  const result = simulate(program(p, built), {
    kernel: kernelView,
    cpus: p.cpus,
    costs,
    preemption: "none",
    binding: (n) => (n === "vcpu0" ? 0 : null),
    seed: 2,
  });
  const vcpu = result.perTask.find((t) => t.name === "vcpu0");
  if (vcpu?.doneNs == null || vcpu.firstStepNs == null) {
    throw new Error(`defunct-root-zap: the vCPU did not finish (status ${result.status})`);
  }
  const vcpuBlockedNs = vcpu.doneNs - vcpu.firstStepNs;
  const worker = result.perTask.find((t) => t.name.startsWith("kworker:"));
  return {
    label: p.kernel === "v5.17" ? "sync" : "async",
    kernel: p.kernel,
    params: p,
    metrics: {
      vcpuBlockedMs: vcpuBlockedNs / 1e6,
      workerZapMs: worker === undefined ? null : worker.busyNs / 1e6,
      leaves: defunctRootZapLeaves(p),
      pageTables: built.pageTables ?? 0,
      remoteTlbFlushes: built.kvm?.stats.remoteTlbFlushes ?? 0,
      virtualNs: result.virtualNs,
      events: result.events,
    },
    vcpuBlockedNs,
    result,
  };
}
