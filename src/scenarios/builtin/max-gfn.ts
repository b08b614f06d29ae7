import { hostState } from "../../mmu/host_mm.js";
import { kvm_arch_prepare_memory_region } from "../../mmu/kvm.js";
import { PG_LEVEL_4K } from "../../mmu/tdp_iter.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { kvm_mmu_load } from "../../mmu/vcpu.js";
import { memslotDeleteTask } from "../../mmu/workloads.js";
import type { Scenario } from "../define.js";
import { vmScenario } from "./vm.js";

/**
 * Address bounds (86931ff7207b, 5.18-rc5). 2-entry tables reach 16 gfns; the host's MAXPHYADDR
 * covers 8 of them and the guest's all 16 (user space advertised a larger MAXPHYADDR than the
 * host has, or KVM runs nested under a host that reports less than the hardware does). Slot 0 is
 * [0, 8); user space then asks for slot 1 = [8, 16). vCPU 0 touches gfns 2 and 12, and slot 0 is
 * deleted. From 5.18 slot 1 is refused, the access to gfn 12 is emulated and nothing maps it; in
 * 5.17 (or with memslotMaxGfnCheck off) the fault maps gfn 12, past the end at which every zap
 * stops.
 */
export const maxGfn: Scenario = vmScenario({
  name: "max-gfn",
  description:
    "host MAXPHYADDR 8 of 16 reachable gfns, guest 16; slot 0 = [0, 8), slot 1 = [8, 16) requested; " +
    "vCPU 0 faults gfns 2 and 12, then slot 0 is deleted.",
  exercises:
    "kvm_mmu_max_gfn(), kvm_arch_prepare_memory_region()'s -EINVAL (features.memslotMaxGfnCheck), " +
    "tdp_mmu_max_gfn_exclusive() bounding the zaps; spte-beyond-max-gfn.",
  defaultKernel: "v6.9",
  machine: { preemption: "none", needResched: "never" },
  ptesPerTable: 2,
  memslotPages: 8,
  hostMaxGfn: 8,
  guestMaxGfn: 16,
  vcpus: [0],
  prologue: function* ({ kvm, vcpus }) {
    // KVM_SET_USER_MEMORY_REGION for slot 1, before anything runs.
    const slot1 = { id: 1, as_id: 0, base_gfn: 8, npages: 8, flags: 0, deleted: false };
    if (kvm_arch_prepare_memory_region(kvm, slot1) === 0) kvm.memslots.push(slot1);
    hostState(kvm);
    yield* kvm_mmu_load(vcpus[0]);
    for (const gfn of [2, 12]) yield* kvm_tdp_mmu_page_fault(vcpus[0], gfn, false, { maxLevel: PG_LEVEL_4K });
  },
  body: ({ kvm, spawn }) => {
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[0]));
  },
});
