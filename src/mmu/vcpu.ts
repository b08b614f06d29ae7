import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import {
  Atomic,
  bitfield_load,
  clear_bit,
  cmpxchg,
  READ_ONCE,
  set_bit,
  test_bit,
  WRITE_ONCE,
} from "../kernel/atomic.js";
import { lockdep_assert_held_read, lockdep_assert_held_write } from "../kernel/lockdep.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import type { Features } from "./features.js";
import { check_no_vcpu_in_guest_on_invalid_root, check_vcpu_entry } from "./invariants/roots.js";
import { ROLE } from "./role.js";
import {
  kvm_tdp_mmu_alloc_root,
  kvm_tdp_mmu_get_vcpu_root_hpa,
  kvm_tdp_mmu_put_root,
} from "./tdp_mmu_root.js";
import { KVM_REQ, type Kvm, type KvmMmuPage, type Vcpu } from "./types.js";
import { kvm_vcpu_flush_tlb_all, kvm_x86_flush_tlb_current } from "./vcpu_tlb.js";

/**
 * A vCPU's side of the root lifecycle (arch/x86/kvm/mmu/mmu.c, x86.c, virt/kvm/kvm_main.c):
 * loading a root before entering the guest, dropping roots, and the request
 * protocol that keeps a vCPU from running the guest on a root that was
 * invalidated: the invalidator makes a request on every vCPU in the same
 * write-locked section that sets `invalid`, kicks vCPUs out of the guest and
 * waits for them (KVM_REQUEST_WAIT); a vCPU checks its requests after
 * announcing IN_GUEST_MODE and backs out if any is pending.
 */

/** vcpu->mode values (include/linux/kvm_host.h). */
export const OUTSIDE_GUEST_MODE = 0;
export const IN_GUEST_MODE = 1;
export const EXITING_GUEST_MODE = 2;

/** KVM_MMU_ROOT_CURRENT / KVM_MMU_ROOT_PREVIOUS(i) / KVM_MMU_ROOTS_ALL (kvm_host.h). */
export const KVM_MMU_ROOT_CURRENT = 1;
export function KVM_MMU_ROOT_PREVIOUS(i: number): number {
  return 2 << i;
}
export const KVM_MMU_ROOTS_ALL = (1 << 4) - 1;

/** Per-vCPU state the model keeps beside struct kvm_vcpu: vcpu->mode, and whether its thread is done. */
interface VcpuExt {
  readonly mode: Atomic;
}

const vcpuExt = new WeakMap<Vcpu, VcpuExt>();

/**
 * vcpu->mode as a shared word, owned by struct kvm. Created the first time the vCPU's own thread
 * uses it (vcpuTask does so when it is spawned, so object ids do not depend on the schedule).
 */
export function vcpu_mode(vcpu: Vcpu): Atomic {
  let e = vcpuExt.get(vcpu);
  if (e === undefined) {
    e = { mode: new Atomic(`vcpu${vcpu.vcpu_id}.mode`, OUTSIDE_GUEST_MODE, vcpu.kvm.kobj) };
    vcpuExt.set(vcpu, e);
  }
  return e.mode;
}

/**
 * Whether a preset has KVM_REQ_MMU_FREE_OBSOLETE_ROOTS (5.18, 527d5cd7eece, which arrived with
 * defunct roots and dropped KVM_REQ_MMU_RELOAD). 5.17 reloads (unloads) every root instead.
 */
export function hasFreeObsoleteRoots(f: Features): boolean {
  return f.defunctRoots || f.persistentRoots;
}

/** The request kvm_mmu_zap_all_fast() makes of every vCPU in this era. */
export function obsoleteRootsRequest(f: Features): number {
  return hasFreeObsoleteRoots(f) ? KVM_REQ.MMU_FREE_OBSOLETE_ROOTS : KVM_REQ.MMU_RELOAD;
}

/** kvm_make_request() (kvm_host.h): set the request bit (the caller orders its data before it). */
export function* kvm_make_request(req: number, vcpu: Vcpu): Gen<void> {
  yield* set_bit(req, vcpu.requests);
}

/** kvm_check_request() (kvm_host.h): test and clear one request bit. */
export function* kvm_check_request(req: number, vcpu: Vcpu): Gen<boolean> {
  if (!(yield* test_bit(req, vcpu.requests))) return false;
  yield* clear_bit(req, vcpu.requests);
  return true;
}

/** kvm_request_pending() (kvm_host.h): any request bit set. */
export function* kvm_request_pending(vcpu: Vcpu): Gen<boolean> {
  return (yield* READ_ONCE(vcpu.requests)) !== 0;
}

/**
 * kvm_make_all_cpus_request() (kvm_main.c) for a KVM_REQUEST_WAIT request (FREE_OBSOLETE_ROOTS and
 * MMU_RELOAD are): set the bit on every vCPU; a vCPU seen IN_GUEST_MODE is moved to EXITING and
 * kicked, and the caller waits for the kick to be acknowledged, i.e. for the vCPU to be out of the
 * guest. A vCPU not in the guest will see the bit before it enters.
 */
export const kvm_make_all_cpus_request = modelFn(
  "kvm_make_all_cpus_request",
  function* (kvm: Kvm, req: number): Gen<void> {
    const kicked: Vcpu[] = [];
    for (const vcpu of kvm.vcpus) {
      yield* kvm_make_request(req, vcpu);
      // A vCPU that never ran has no mode word yet: it is outside the guest, nothing to kick.
      const m = vcpuExt.get(vcpu)?.mode;
      if (m === undefined) continue;
      // kvm_request_needs_ipi() -> kvm_vcpu_exiting_guest_mode(): cmpxchg IN_GUEST -> EXITING.
      const mode = yield* cmpxchg(m, IN_GUEST_MODE, EXITING_GUEST_MODE);
      if (mode === IN_GUEST_MODE) kicked.push(vcpu);
    }
    for (const vcpu of kicked) {
      const m = vcpu_mode(vcpu);
      // smp_call_function_many(wait=true): the IPI is handled once the vCPU has left the guest.
      yield {
        kind: "wait",
        obj: m.id,
        objs: m.deps,
        fn: currentFn(),
        step: `kick vcpu${vcpu.vcpu_id} and wait`,
        enabled: () => m.v === OUTSIDE_GUEST_MODE,
      };
    }
    check_no_vcpu_in_guest_on_invalid_root(kvm);
  },
);

/** The vCPU's reference in one root slot: the current root (-1) or prev_roots[i]. */
function getSlot(vcpu: Vcpu, slot: number): KvmMmuPage | null {
  return slot < 0 ? vcpu.root : vcpu.prev_roots[slot];
}

function setSlot(vcpu: Vcpu, slot: number, root: KvmMmuPage | null): void {
  if (slot < 0) vcpu.root = root;
  else vcpu.prev_roots[slot] = root;
}

/**
 * mmu_free_root_page() (mmu.c): drop the vCPU's reference held in one root slot and mark the slot
 * INVALID_PAGE. For TDP pages the put asserts the read lock from 6.9 (576a15de8d29); before that
 * the caller held the write lock and the put asserted it (shared=false).
 */
export const mmu_free_root_page = modelFn(
  "mmu_free_root_page",
  function* (kvm: Kvm, vcpu: Vcpu, slot: number): Gen<void> {
    const root = getSlot(vcpu, slot);
    if (root === null) return;
    if (kvm.features.rootFreeUnderReadLock) {
      lockdep_assert_held_read(kvm.mmu_lock);
      yield* kvm_tdp_mmu_put_root(kvm, root);
    } else {
      yield* kvm_tdp_mmu_put_root(kvm, root, false);
    }
    setSlot(vcpu, slot, null);
  },
);

/**
 * kvm_mmu_free_roots() (mmu.c): drop the selected roots of the vCPU's MMU. A TDP MMU frees under
 * the read mmu_lock from 6.9 (576a15de8d29), under the write lock before.
 */
export const kvm_mmu_free_roots = modelFn(
  "kvm_mmu_free_roots",
  function* (kvm: Kvm, vcpu: Vcpu, roots_to_free: number): Gen<void> {
    // Before taking mmu_lock, see whether there is anything to do (the slots are the vCPU's own).
    let work = (roots_to_free & KVM_MMU_ROOT_CURRENT) !== 0 && vcpu.root !== null;
    for (let i = 0; i < vcpu.prev_roots.length; i++) {
      if ((roots_to_free & KVM_MMU_ROOT_PREVIOUS(i)) !== 0 && vcpu.prev_roots[i] !== null) work = true;
    }
    if (!work) return;

    const shared = kvm.features.rootFreeUnderReadLock;
    if (shared) yield* read_lock(kvm.mmu_lock);
    else yield* write_lock(kvm.mmu_lock);

    for (let i = 0; i < vcpu.prev_roots.length; i++) {
      if ((roots_to_free & KVM_MMU_ROOT_PREVIOUS(i)) !== 0) yield* mmu_free_root_page(kvm, vcpu, i);
    }
    if ((roots_to_free & KVM_MMU_ROOT_CURRENT) !== 0) yield* mmu_free_root_page(kvm, vcpu, -1);

    if (shared) yield* read_unlock(kvm.mmu_lock);
    else yield* write_unlock(kvm.mmu_lock);
  },
);

/** kvm_mmu_unload() (mmu.c): drop every root the vCPU holds (vCPU reset, destruction, MMU_RELOAD). */
export const kvm_mmu_unload = modelFn("kvm_mmu_unload", function* (vcpu: Vcpu): Gen<void> {
  yield* kvm_mmu_free_roots(vcpu.kvm, vcpu, KVM_MMU_ROOTS_ALL);
  WARN_ON_ONCE(vcpu.root !== null, "VALID_PAGE(vcpu->arch.root_mmu.root.hpa)");
});

/** is_obsolete_root() (mmu.c, 5.18+): for a TDP root, whether it has been invalidated. */
function* is_obsolete_root(root: KvmMmuPage | null): Gen<boolean> {
  if (root === null) return false;
  return (yield* bitfield_load(root.role, ROLE.invalid)) === 1;
}

/** kvm_mmu_free_obsolete_roots() (mmu.c, 5.18 527d5cd7eece): drop only the roots that are obsolete. */
export const kvm_mmu_free_obsolete_roots = modelFn(
  "kvm_mmu_free_obsolete_roots",
  function* (vcpu: Vcpu): Gen<void> {
    let roots_to_free = 0;
    if (yield* is_obsolete_root(vcpu.root)) roots_to_free |= KVM_MMU_ROOT_CURRENT;
    for (let i = 0; i < vcpu.prev_roots.length; i++) {
      if (yield* is_obsolete_root(vcpu.prev_roots[i])) roots_to_free |= KVM_MMU_ROOT_PREVIOUS(i);
    }
    if (roots_to_free !== 0) yield* kvm_mmu_free_roots(vcpu.kvm, vcpu, roots_to_free);
  },
);

/**
 * mmu_alloc_direct_roots() (mmu.c) for a TDP MMU: before 6.9, under the write mmu_lock,
 * kvm_tdp_mmu_get_vcpu_root_hpa(); from 6.9, kvm_tdp_mmu_alloc_root(), which takes the read lock.
 */
export const mmu_alloc_direct_roots = modelFn("mmu_alloc_direct_roots", function* (vcpu: Vcpu): Gen<void> {
  const kvm = vcpu.kvm;
  if (kvm.features.rootAllocUnderReadLock) {
    yield* kvm_tdp_mmu_alloc_root(vcpu);
    return;
  }
  yield* write_lock(kvm.mmu_lock);
  lockdep_assert_held_write(kvm.mmu_lock);
  vcpu.root = yield* kvm_tdp_mmu_get_vcpu_root_hpa(vcpu);
  yield* write_unlock(kvm.mmu_lock);
});

/**
 * kvm_mmu_load() (mmu.c): allocate or reuse a root, load it, and flush the local TLB: the root's
 * history is unknown (it may have been zapped without a flush, which is why zapping invalid roots
 * needs none).
 */
export const kvm_mmu_load = modelFn("kvm_mmu_load", function* (vcpu: Vcpu): Gen<void> {
  yield* mmu_alloc_direct_roots(vcpu);
  // kvm_mmu_load_pgd(), then flush what the CPU may cache for the root's frame: a freed root's
  // translations survive under the frame a new root may get (freeing a root does not flush).
  yield* kvm_x86_flush_tlb_current(vcpu);
});

/** kvm_mmu_reload() (mmu.h): load a root if the vCPU has none. */
export const kvm_mmu_reload = modelFn("kvm_mmu_reload", function* (vcpu: Vcpu): Gen<void> {
  if (vcpu.root !== null) return;
  yield* kvm_mmu_load(vcpu);
});

/**
 * The request handling and entry half of vcpu_enter_guest() (x86.c): service MMU requests
 * (FREE_OBSOLETE_ROOTS from 5.18, MMU_RELOAD before; TLB_FLUSH), reload a root if none, announce
 * IN_GUEST_MODE, then check requests once more and back out if one arrived. Returns whether the
 * vCPU is now running the guest.
 */
export const vcpu_enter_guest = modelFn("vcpu_enter_guest", function* (vcpu: Vcpu): Gen<boolean> {
  const f = vcpu.kvm.features;
  if (yield* kvm_request_pending(vcpu)) {
    if (hasFreeObsoleteRoots(f)) {
      if (yield* kvm_check_request(KVM_REQ.MMU_FREE_OBSOLETE_ROOTS, vcpu))
        yield* kvm_mmu_free_obsolete_roots(vcpu);
    } else if (yield* kvm_check_request(KVM_REQ.MMU_RELOAD, vcpu)) {
      yield* kvm_mmu_unload(vcpu);
    }
    if (yield* kvm_check_request(KVM_REQ.TLB_FLUSH, vcpu)) yield* kvm_vcpu_flush_tlb_all(vcpu);
  }
  yield* kvm_mmu_reload(vcpu);

  const mode = vcpu_mode(vcpu);
  yield* WRITE_ONCE(mode, IN_GUEST_MODE);
  if (yield* kvm_request_pending(vcpu)) {
    yield* WRITE_ONCE(mode, OUTSIDE_GUEST_MODE);
    return false;
  }
  vcpu.inGuest = true;
  check_vcpu_entry(vcpu);
  return true;
});

/** The VM exit: the vCPU leaves the guest (vcpu->mode = OUTSIDE_GUEST_MODE), acknowledging kicks. */
export const vcpu_exit_guest = modelFn("vcpu_exit_guest", function* (vcpu: Vcpu): Gen<void> {
  // The exit and the re-entry that follows it are priced together, here.
  host().cost("vm_exit", 1);
  yield* WRITE_ONCE(vcpu_mode(vcpu), OUTSIDE_GUEST_MODE);
  vcpu.inGuest = false;
});
