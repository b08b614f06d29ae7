import { vcpuRoundsTask } from "../../mmu/protocol_tasks.js";
import { destroyVmTask, notifierInvalidateTask, vcpuTask } from "../../mmu/workloads.js";
import type { Scenario } from "../define.js";
import { vmScenario } from "./vm.js";

/**
 * Scenarios whose vCPUs run on the modelled CPU (VcpuTaskOptions.hardware): the guest's accesses
 * walk the SPTEs, set Accessed/Dirty behind mmu_lock and are cached in a TLB tagged by root frame.
 */

/**
 * The flush on root load. A vCPU write-faults a page, caches the translation, and drops its root;
 * the root is invalidated, zapped without a flush (no vCPU can use it) and freed; the vCPU loads a
 * new root, which may get the freed root's frame, and writes the page again. Only the flush in
 * kvm_mmu_load() keeps the CPU from writing through the old root's translation.
 */
export const tlbRootReuse: Scenario = vmScenario({
  name: "tlb-root-reuse",
  description:
    "One vCPU in two rounds on gfn 0 (load, write through the CPU, unload); the dropped root is zapped " +
    "without a TLB flush and freed, and the next root can reuse its frame. VM teardown after the vCPU.",
  exercises:
    "tlb-stale-access: the flush on root load (kvm_x86_flush_tlb_current), root frame reuse, and the zap of " +
    "unreachable roots without a flush; with the variant skip-root-load-flush it fails.",
  defaultKernel: "v5.18",
  // Nobody needs to yield mmu_lock for what is checked here; without yields the run stays small.
  machine: { preemption: "none", needResched: "never" },
  ptesPerTable: 2,
  memslotPages: 4,
  vcpus: [0],
  body: ({ vcpus, kvm, spawn }) => {
    spawn("vcpu0", vcpuRoundsTask(vcpus[0], [0, 0], { hardware: true }));
    spawn("destroy-vm", destroyVmTask(kvm));
  },
});

/**
 * The CPU's Dirty bit against a zap under the write mmu_lock. The vCPU reads gfn 0 (a writable
 * SPTE, Dirty clear) and writes it through the cached translation, which sets Dirty in the SPTE
 * with a locked update, while an mmu_notifier invalidation zaps the page with mmu_lock held for
 * write. Since 5.18 (ba3a6120a4e7) the zap writes an SPTE with volatile bits with XCHG and sees the
 * bit; before, a plain store could drop it.
 */
export const spteDirtyRace: Scenario = vmScenario({
  name: "spte-dirty-race",
  description:
    "A vCPU reads then writes gfn 0 through the CPU while an mmu_notifier invalidation zaps gfns 0-1 " +
    "under the write mmu_lock; VM teardown after both.",
  exercises:
    "spte-lost-dirty: the Dirty bit the CPU sets behind mmu_lock, and the XCHG on SPTEs with volatile bits " +
    "(volatileSpteXchg, 5.18); with --kernel v5.17 or --feature volatileSpteXchg=off it fails. 6.6 by default: no zap worker to interleave with teardown.",
  defaultKernel: "v6.6",
  // Nobody needs to yield mmu_lock for what is checked here; without yields the run stays small.
  machine: { preemption: "none", needResched: "never" },
  ptesPerTable: 2,
  memslotPages: 4,
  vcpus: [0],
  body: ({ vcpus, kvm, spawn }) => {
    spawn(
      "vcpu0",
      vcpuTask(vcpus[0], {
        faults: [
          { gfn: 0, write: false },
          { gfn: 0, write: true },
        ],
        hardware: true,
        // The root stays loaded until teardown: no defunct root, no zap worker in the run.
        unload: false,
      }),
    );
    spawn("notifier", notifierInvalidateTask(kvm, 0, 2));
    spawn("destroy-vm", destroyVmTask(kvm));
  },
});
