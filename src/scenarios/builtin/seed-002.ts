import type { Gen } from "../../engine/op.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "../../mmu/kvm_destroy.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import type { Vcpu } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { destroyVmTask, memslotDeleteTask } from "../../mmu/workloads.js";

/** A vCPU thread closing: drops its root (here the last reference) and its VM reference. */
function* vcpuExit(vcpu: Vcpu): Gen<void> {
  kvm_get_kvm_at_spawn(vcpu.kvm);
  yield* kvm_mmu_unload(vcpu);
  yield* kvm_put_kvm(vcpu.kvm);
}

import { registerRoleBitsCheck } from "./seed-003.js";
import { vmScenario } from "./vm.js";

export const seed002ZapWorker = vmScenario({
  name: "seed-002-zap-worker",
  description:
    "A vCPU maps a page and drops the last reference to its root (a defunct root, zapped by the worker) " +
    "while memslot 0 is deleted (fast zap); the VM is destroyed at the end.",
  exercises:
    "seed 002: every setter of role.invalid queues the worker before dropping mmu_lock; queue_work on a " +
    "pending item is a no-op; kvm_mmu_zap_all_fast() waits for every queued zap. Checks inv 10, inv 13, " +
    "refcount rules, leaks at teardown (inv 14) and L1.",
  defaultKernel: "v5.18",
  vcpus: [0],
  // The vCPU has mapped gfn 0 in its root before the race starts.
  *prologue({ vcpus }) {
    yield* kvm_mmu_load(vcpus[0]);
    yield* kvm_tdp_mmu_page_fault(vcpus[0], 0, true);
  },
  body: ({ kvm, vcpus, spawn }) => {
    registerRoleBitsCheck(kvm);
    spawn("vcpu0", vcpuExit(vcpus[0]));
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[0]));
    spawn("destroy-vm", destroyVmTask(kvm));
  },
});
