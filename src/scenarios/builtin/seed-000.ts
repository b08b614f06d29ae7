import type { Gen } from "../../engine/op.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "../../mmu/kvm_destroy.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import type { Vcpu } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { destroyVmTask, memslotDeleteTask } from "../../mmu/workloads.js";
import { vmScenario } from "./vm.js";

/** A vCPU that runs once and goes away: loads a root and drops it again. */
function* loadUnload(vcpu: Vcpu): Gen<void> {
  yield* kvm_mmu_load(vcpu);
  yield* kvm_mmu_unload(vcpu);
}

/** A vCPU with a loaded root taking one write fault on `gfn` (the EPT violation's handler). */
function* faultOnce(vcpu: Vcpu, gfn: number): Gen<void> {
  kvm_get_kvm_at_spawn(vcpu.kvm);
  yield* kvm_tdp_mmu_page_fault(vcpu, gfn, true);
  yield* kvm_put_kvm(vcpu.kvm);
}

export const seed000Teardown = vmScenario({
  name: "seed-000-teardown",
  description:
    "Two vCPUs (normal and SMM address space) leave one root each; then the VM is destroyed and " +
    "kvm_mmu_uninit_tdp_mmu() invalidates the roots while the zap worker frees them.",
  exercises:
    "seed 000: the root-list walk of kvm_tdp_mmu_invalidate_all_roots() at teardown against the " +
    "worker's list_del_rcu(); use-after-free on the list, teardown cleanliness (inv 14).",
  defaultKernel: "v6.4",
  vcpus: [0, 1],
  // The vCPU threads have run their course before the last close of the VM: with persistent
  // roots, each leaves a root held only by the TDP MMU's reference.
  *prologue({ vcpus }) {
    yield* loadUnload(vcpus[0]);
    yield* loadUnload(vcpus[1]);
  },
  body: ({ kvm, spawn }) => {
    spawn("destroy-vm", destroyVmTask(kvm));
  },
});

export const seed000ReadLockInvalidate = vmScenario({
  name: "seed-000-invalidate-vs-fault",
  description: "A vCPU faults in a page of memslot 0 while the slot is deleted (kvm_mmu_zap_all_fast()).",
  exercises:
    "seed 000's 'Maybe': whether kvm_mmu_zap_all_fast() may invalidate roots under the read mmu_lock, " +
    "with slots_lock serialising invalidators. A fault holds the read lock too; checks inv 9 (no new " +
    "SPTE in an invalid root) and inv 10 (the deleted slot is unmapped when the fast zap returns).",
  defaultKernel: "v6.4",
  vcpus: [0],
  *prologue({ vcpus }) {
    yield* kvm_mmu_load(vcpus[0]);
  },
  body: ({ kvm, vcpus, spawn }) => {
    spawn("vcpu0", faultOnce(vcpus[0], 0));
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[0]));
  },
});
