import { hostState } from "../../mmu/host_mm.js";
import { nxRecoveryTask } from "../../mmu/nx_huge_page_recovery.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { kvm_mmu_load } from "../../mmu/vcpu.js";
import { dirtyLogDisableTask } from "../../mmu/workloads.js";
import type { Scenario } from "../define.js";
import { vmScenario } from "./vm.js";

/**
 * NX huge page recovery against the other users of the same page table. vCPU 0 fetches from gfn 9
 * first: with the mitigation it maps 4K, and the two tables the fetch needed (where a 1G and a 2M
 * page could be) are listed on possible_nx_huge_pages. Then the recovery worker runs beside the
 * disabling of dirty logging, whose huge page recovery (in place from 6.13, by zapping before)
 * replaces or zaps the same table under the read lock. (With a vCPU faulting beside them as well,
 * the write-lock era alone takes 128,000 executions; the unit tests race the fault path.)
 */
export const nxRecovery: Scenario = vmScenario({
  name: "nx-recovery",
  description:
    "vCPU 0 fetches gfn 9 (mapped 4K by the NX huge page mitigation, its tables listed); then the NX " +
    "recovery worker runs beside the disabling of dirty logging on the slot.",
  exercises:
    "kvm_recover_nx_huge_pages() under the write mmu_lock (to 6.17) or, with --feature nxRecoveryUnderReadLock=on " +
    "(6.18), under the read lock with tdp_mmu_pages_lock; possible_nx_huge_pages against tdp_mmu_unlink_sp(); " +
    "inv16, inv17 and WARNs on the zapped table.",
  defaultKernel: "v6.15",
  // Nobody needs to yield mmu_lock for what is checked here; without yields the run stays small.
  machine: { preemption: "none", needResched: "never" },
  ptesPerTable: 2,
  nxRecoveryRatio: 1,
  vcpus: [0],
  prologue: function* ({ kvm, vcpus }) {
    // The memslot array is a shared word before the concurrent tasks start.
    hostState(kvm);
    yield* kvm_mmu_load(vcpus[0]);
    yield* kvm_tdp_mmu_page_fault(vcpus[0], 9, false, { exec: true });
  },
  body: ({ kvm, spawn }) => {
    spawn("nx-recovery", nxRecoveryTask(kvm));
    spawn("dirty-log-disable", dirtyLogDisableTask(kvm, kvm.memslots[0]));
  },
});
