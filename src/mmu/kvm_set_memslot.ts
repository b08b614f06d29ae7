import { host } from "../engine/host.js";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { lockdep_assert_held } from "../kernel/lockdep.js";
import { check_slot_unmapped } from "./invariants/roots.js";
import { kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import type { Kvm, Memslot } from "./types.js";
import { kvm_swap_active_memslots } from "./workloads.js";

/**
 * KVM_SET_USER_MEMORY_REGION as the memslot code of 5.17-6.9 runs it (kvm_main.c after the
 * scalable-memslots series, Maciej S. Szmigiero, merged for 5.17): every change builds the new
 * state in the inactive memslot set and publishes it with kvm_swap_active_memslots(), which waits
 * for SRCU readers (vCPUs in KVM_RUN outside the guest, faults) with synchronize_srcu_expedited().
 * DELETE and MOVE first publish the old slot as KVM_MEMSLOT_INVALID, so no new fault can map it,
 * and then x86 drops every mapping of it: kvm_arch_flush_shadow_memslot() -> kvm_mmu_zap_all_fast()
 * (every root, not only the slot's range: KVM_X86_QUIRK_SLOT_ZAP_ALL only became optional in 6.12).
 * The caller holds slots_lock (kvm_set_memory_region()); the model's memslot array stands for both
 * sets, changed only inside kvm_swap_active_memslots().
 */

export type MemslotChange = "create" | "delete" | "move";

/** synchronize_srcu_expedited(&kvm->srcu) in kvm_swap_active_memslots(), priced as one wait (no SRCU readers are modelled). */
function synchronize_srcu_expedited(): void {
  host().cost("synchronize_srcu_expedited", 1);
}

/** kvm_swap_active_memslots() (kvm_main.c, 5.17+): publish the change, then wait out SRCU readers. */
function* swap_and_sync(kvm: Kvm, change: () => void): Gen<void> {
  yield* kvm_swap_active_memslots(kvm, change);
  synchronize_srcu_expedited();
}

/**
 * kvm_invalidate_memslot() (kvm_main.c, 5.17+): publish the old slot as invalid (faults find no
 * slot there and exit to retry), then have the arch code drop its mappings.
 */
export const kvm_invalidate_memslot = modelFn(
  "kvm_invalidate_memslot",
  function* (kvm: Kvm, old: Memslot): Gen<void> {
    yield* swap_and_sync(kvm, () => {
      old.deleted = true;
    });
    yield* kvm_arch_flush_shadow_memslot(kvm, old);
  },
);

/**
 * kvm_arch_flush_shadow_memslot() (x86.c, 5.17-6.11): kvm_page_track_flush_slot() has no users in
 * the model, then kvm_mmu_zap_all_fast(): every root is invalidated and zapped, whatever the slot.
 */
export const kvm_arch_flush_shadow_memslot = modelFn(
  "kvm_arch_flush_shadow_memslot",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* kvm_mmu_zap_all_fast(kvm);
    check_slot_unmapped(kvm, slot.base_gfn, slot.base_gfn + slot.npages);
  },
);

/** Drop `slot` from the memslot array (it is already invisible to faults). */
function unlink(kvm: Kvm, slot: Memslot): void {
  const i = kvm.memslots.indexOf(slot);
  if (i >= 0) kvm.memslots.splice(i, 1);
}

/**
 * kvm_set_memslot() (kvm_main.c, 5.17+) for one change, with slots_lock held:
 * - create: kvm_create_memslot(), one swap; the new range starts unmapped (x86 zaps nothing);
 * - delete: kvm_invalidate_memslot() (swap, fast zap), then kvm_delete_memslot() (swap);
 * - move: kvm_invalidate_memslot() (swap, fast zap of the old range with everything else), then
 *   kvm_move_memslot() (swap) publishes the slot at its new base.
 * Returns the slot as it is now (null after a delete).
 */
export const kvm_set_memslot = modelFn(
  "kvm_set_memslot",
  function* (
    kvm: Kvm,
    old: Memslot | null,
    next: Memslot | null,
    change: MemslotChange,
  ): Gen<Memslot | null> {
    lockdep_assert_held(kvm.slots_lock);
    if (change !== "create") {
      if (old === null) throw new Error(`kvm_set_memslot: ${change} needs the old slot`);
      yield* kvm_invalidate_memslot(kvm, old);
    }
    if (change === "delete") {
      // kvm_delete_memslot(): the invalid copy goes away.
      yield* swap_and_sync(kvm, () => unlink(kvm, old!));
      return null;
    }
    if (next === null) throw new Error(`kvm_set_memslot: ${change} needs the new slot`);
    // kvm_create_memslot() / kvm_move_memslot(): the new slot becomes visible to faults.
    yield* swap_and_sync(kvm, () => {
      if (old !== null) unlink(kvm, old);
      kvm.memslots.push(next);
    });
    return next;
  },
);
