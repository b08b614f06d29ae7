import type { Gen } from "../../engine/op.js";
import { bitfield_load } from "../../kernel/atomic.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { ROLE } from "../../mmu/role.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "../../mmu/tdp_mmu_iter_roots.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { memslotDeleteTask } from "../../mmu/workloads.js";
import { vmScenario } from "./vm.js";
import { check_walk_complete, resumeRootWalk, startRootWalk, validRootsNow } from "./walks.js";

/**
 * An update walk over every valid root under the read lock, as dirty logging does, yielding
 * inside each root; when it ends it checks seed 001's completeness property (check_walk_complete).
 */
export function* updateWalk(kvm: Kvm): Gen<void> {
  const before = validRootsNow(kvm);
  const visited = new Set<KvmMmuPage>();
  yield* read_lock(kvm.mmu_lock);
  yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, -1, true, function* (root) {
    yield* bitfield_load(root.role, ROLE.invalid);
    visited.add(root);
    return undefined;
  });
  yield* read_unlock(kvm.mmu_lock);
  check_walk_complete(before, visited);
}

export const seed001RootWalk = vmScenario({
  name: "seed-001-root-walk",
  description:
    "Two read-side walkers over two roots. walker-b holds the last reference to the newest root (its vCPU " +
    "dropped its own while walker-b had yielded); its put makes the root defunct while walker-a, an update " +
    "walk, goes through the list.",
  exercises:
    "seed 001: tdp_mmu_next_root() when the previous root became invalid: terminate, restart or continue. " +
    "A root can go defunct between walker-a's validity check and its get. Checks walk-complete.",
  defaultKernel: "v5.18",
  vcpus: [0, 1],
  *prologue({ kvm, vcpus }) {
    yield* kvm_mmu_load(vcpus[0]);
    yield* kvm_mmu_load(vcpus[1]);
    heldB.set(kvm, yield* startRootWalk(kvm));
    yield* kvm_mmu_unload(vcpus[1]);
  },
  body: ({ kvm, spawn }) => {
    spawn("walker-a", updateWalk(kvm));
    spawn("walker-b", resumeRootWalk(kvm, heldB.get(kvm) ?? null));
  },
});

const heldB = new WeakMap<Kvm, KvmMmuPage | null>();

export const seed001RootWalkFastZap = vmScenario({
  name: "seed-001-walk-vs-fast-zap",
  description:
    "An update walk over all valid roots yields inside each root while a memslot deletion invalidates every root.",
  exercises:
    "seed 001's premise: all roots are invalidated together, so a walk that meets an invalid previous " +
    "root may stop. Checks walk-complete.",
  defaultKernel: "v5.17",
  vcpus: [0, 1],
  *prologue({ vcpus }) {
    yield* kvm_mmu_load(vcpus[0]);
    yield* kvm_mmu_load(vcpus[1]);
  },
  body: ({ kvm, spawn }) => {
    spawn("walker", updateWalk(kvm));
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[0]));
  },
});
