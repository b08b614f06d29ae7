import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import { bitfield_load } from "../../kernel/atomic.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { ROLE } from "../../mmu/role.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "../../mmu/tdp_mmu_iter_roots.js";
import type { Kvm, KvmMmuPage, Vcpu } from "../../mmu/types.js";
import { kvm_mmu_load, kvm_mmu_unload } from "../../mmu/vcpu.js";
import { vmScenario } from "./vm.js";
import { resumeRootWalk, startRootWalk } from "./walks.js";

/**
 * A read-side root walk: every valid root, under the read mmu_lock, holding a
 * reference on each while it looks at it (for_each_valid_tdp_mmu_root_yield_safe),
 * as dirty logging, huge-page splitting or collapsing do. The body reads the
 * root's role, which is all a use needs to be a use-after-free if the root
 * was freed under the walker.
 */
export function* readSideRootWalk(kvm: Kvm): Gen<void> {
  yield* read_lock(kvm.mmu_lock);
  yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, -1, true, function* (root) {
    yield* bitfield_load(root.role, ROLE.invalid);
    return undefined;
  });
  yield* read_unlock(kvm.mmu_lock);
}

/** A vCPU dropping the root it holds (vCPU reset or destruction: kvm_mmu_unload()). */
export function* vcpuUnload(vcpu: Vcpu): Gen<void> {
  yield* kvm_mmu_unload(vcpu);
}

/** Every root's role bits other than `invalid` stay as they were created (seed 003: the whole-word xchg). */
export function registerRoleBitsCheck(kvm: Kvm): void {
  const initial = new Map<number, number>();
  const mask = ~((ROLE.invalid.mask << ROLE.invalid.shift) >>> 0) >>> 0;
  host().addCheck("role-bits-preserved", () => {
    for (const sp of kvm.pages.values()) {
      if (!sp.isRoot) continue;
      const now = (sp.role.v & mask) >>> 0;
      const was = initial.get(sp.pageId);
      if (was === undefined) initial.set(sp.pageId, now);
      else if (was !== now) {
        host().report({
          invariant: "role-bits-preserved",
          message: `${sp.kobj.name}'s role changed outside the invalid bit: ${was.toString(16)} -> ${now.toString(16)} (in ${currentFn()})`,
          details: { root: sp.kobj.name, was, now },
        });
      }
    }
  });
}

export const seed003PutRoot = vmScenario({
  name: "seed-003-put-root",
  description:
    "A read-side walker holds the last reference to a root (the vCPU dropped its own while the walker " +
    "had yielded) and moves on, putting it, while a second walker takes references on every valid root.",
  exercises:
    "seed 003: kvm_tdp_mmu_put_root() dropping the last reference under the read mmu_lock against " +
    "tdp_mmu_next_root()'s check-then-get in another walker. Checks use-after-free, refcount_t rules, " +
    "role bits preserved and the root invariants.",
  defaultKernel: "v5.18",
  vcpus: [0],
  *prologue({ kvm, vcpus }) {
    yield* kvm_mmu_load(vcpus[0]);
    // walker-a starts, takes its reference and yields; meanwhile the vCPU drops its root.
    held.set(kvm, yield* startRootWalk(kvm));
    yield* kvm_mmu_unload(vcpus[0]);
  },
  body: ({ kvm, spawn }) => {
    registerRoleBitsCheck(kvm);
    spawn("walker-a", resumeRootWalk(kvm, held.get(kvm) ?? null));
    spawn("walker-b", readSideRootWalk(kvm));
  },
});

const held = new WeakMap<Kvm, KvmMmuPage | null>();
