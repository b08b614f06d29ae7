import type { Gen } from "../../engine/op.js";
import { kfree } from "../../kernel/alloc.js";
import { WRITE_ONCE } from "../../kernel/atomic.js";
import { check_teardown_clean } from "../../mmu/invariants/roots.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm, kvm_unload_vcpu_mmus } from "../../mmu/kvm_destroy.js";
import { kvm_mmu_notifier_release } from "../../mmu/mmu_notifier.js";
import { kvm_mmu_uninit_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import type { Kvm, Vcpu } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { memslotDeleteTask } from "../../mmu/workloads.js";
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
    "A vCPU left a root behind; the VM is being destroyed, and kvm_mmu_uninit_tdp_mmu() walks the " +
    "root list to invalidate it while the zap worker it queued unlinks and frees it. One root is " +
    "enough: after queueing the root's zap the walk still reads the root's ->next.",
  exercises:
    "seed 000: the root-list walk of kvm_tdp_mmu_invalidate_all_roots() at teardown against the " +
    "worker's list_del_rcu() and call_rcu(); use-after-free on the list, teardown cleanliness (inv 14).",
  defaultKernel: "v6.4",
  vcpus: [0],
  // kvm_destroy_vm() up to kvm_mmu_uninit_tdp_mmu(): the vCPU threads have run their course
  // (with persistent roots each leaves a root held by the TDP MMU alone), the notifier's release
  // zapped everything and the vCPUs' MMUs were unloaded. Nothing else holds a VM reference.
  *prologue({ kvm, vcpus }) {
    yield* loadUnload(vcpus[0]);
    yield* kvm_mmu_notifier_release(kvm);
    yield* kvm_unload_vcpu_mmus(kvm);
    yield* WRITE_ONCE(kvm.users_count, 0);
  },
  body: ({ kvm, spawn }) => {
    spawn("kvm_destroy_vm", uninitTask(kvm));
  },
});

/** The rest of kvm_destroy_vm() from kvm_mmu_uninit_tdp_mmu(): uninit, the leak checks, the free. */
function* uninitTask(kvm: Kvm): Gen<void> {
  yield* kvm_mmu_uninit_tdp_mmu(kvm);
  check_teardown_clean(kvm);
  yield* kfree(kvm.kobj);
}

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
