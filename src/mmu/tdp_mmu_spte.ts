import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { kfree } from "../kernel/alloc.js";
import {
  type Atomic,
  andMask,
  atomic_fetch_add,
  atomic_fetch_andnot,
  atomic_fetch_sub,
  testBit,
  try_cmpxchg,
  WRITE_ONCE,
  withBit,
  xchg,
} from "../kernel/atomic.js";
import { lockdep_assert_held_read, lockdep_assert_held_write } from "../kernel/lockdep.js";
import { call_rcu, rcu_dereference_check } from "../kernel/rcu.js";
import { op, touch } from "../kernel/shared.js";
import { spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { BUG, WARN_ON_ONCE } from "../kernel/warn.js";
import { handle_removed_pristine_pt, is_pristine_subtree } from "./compressed.js";
import { note_spte_changed } from "./invariants/bounded_hold.js";
import { check_spte_within_max_gfn } from "./invariants/max_gfn.js";
import {
  check_iter_not_stale,
  check_sp_free,
  ghost_sp_linked,
  ghost_spte_frozen,
  ghost_spte_protected,
  ghost_spte_replaced,
  ghost_spte_zapped,
  ghost_table_collapsed,
} from "./invariants/pages.js";
import { check_split_preserves_mapping } from "./invariants/split.js";
import { free_root_frame, pagesPerHpage, tdp_mmu_alloc_sp } from "./kvm.js";
import { nx_huge_page_disallowed, unaccount_nx_huge_page } from "./nx_huge_page_list.js";
import { ROLE, roleAsId } from "./role.js";
import {
  FROZEN_SPTE,
  is_accessed_spte,
  is_dirty_spte,
  is_frozen_spte,
  is_last_spte,
  is_shadow_present_pte,
  is_writable_pte,
  make_nonleaf_spte,
  SHADOW_NONPRESENT_VALUE,
  SPTE_BIT,
  spte_to_pfn,
} from "./spte.js";
import {
  kvm_tdp_mmu_read_spte,
  PT64_ROOT_MAX_LEVEL,
  remember_freed_sp,
  spte_to_child_pt,
  type TdpIter,
} from "./tdp_iter.js";
import { kvm_flush_remote_tlbs, kvm_flush_remote_tlbs_gfn } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/** -EBUSY, as tdp_mmu_set_spte_atomic() returns it. */
export const EBUSY = -16;

/** The VM of the running program (kvm_create_vm registers it), for helpers the kernel calls without one. */
export function currentKvm(): Kvm {
  const kvm = host().env.get("mmu.kvm") as Kvm | undefined;
  if (kvm === undefined) throw new Error("no VM: kvm_create_vm() was not called in this run");
  return kvm;
}

/**
 * The code shape before the 5.18 zap/flush overhaul series (1b6043e8e584,
 * bb95dfb9e2df and their siblings): zap_gfn_range() zaps roots and ranges, and
 * handle_removed_pt() flushes itself. The same series introduced the zap passes,
 * so features.zapPasses === "single" identifies it.
 */
export function preZapOverhaul(kvm: Kvm): boolean {
  return kvm.features.zapPasses === "single";
}

/** kvm_lockdep_assert_mmu_lock_held() (tdp_mmu.c, v5.13+): read for shared walks, write otherwise. */
export function kvm_lockdep_assert_mmu_lock_held(kvm: Kvm, shared: boolean): boolean {
  if (shared) lockdep_assert_held_read(kvm.mmu_lock);
  else lockdep_assert_held_write(kvm.mmu_lock);
  return true;
}

/**
 * spte_has_volatile_bits() (spte.c, v6.x, A/D enabled): bits that can change
 * without mmu_lock. The fast page fault may set W on an MMU-writable SPTE, and
 * the CPU sets A, and D on a writable SPTE.
 */
export function spte_has_volatile_bits(spte: number): boolean {
  if (!is_writable_pte(spte) && testBit(spte, SPTE_BIT.mmuWritable)) return true;
  if (!is_accessed_spte(spte)) return true;
  return is_writable_pte(spte) && !is_dirty_spte(spte);
}

/** kvm_tdp_mmu_spte_need_atomic_write() (tdp_iter.h, v6.6+): present leaves with volatile bits. */
export function kvm_tdp_mmu_spte_need_atomic_write(old_spte: number, level: number): boolean {
  return is_shadow_present_pte(old_spte) && is_last_spte(old_spte, level) && spte_has_volatile_bits(old_spte);
}

/** __kvm_tdp_mmu_write_spte() (tdp_iter.h): WRITE_ONCE(*rcu_dereference(sptep), new). */
export function* __kvm_tdp_mmu_write_spte(sptep: Atomic, new_spte: number): Gen<void> {
  rcu_dereference_check(`sptep ${sptep.name}`);
  yield* WRITE_ONCE(sptep, new_spte);
}

/** kvm_tdp_mmu_write_spte_atomic() (tdp_iter.h): xchg(rcu_dereference(sptep), new). */
export function* kvm_tdp_mmu_write_spte_atomic(sptep: Atomic, new_spte: number): Gen<number> {
  rcu_dereference_check(`sptep ${sptep.name}`);
  return yield* xchg(sptep, new_spte);
}

/**
 * kvm_tdp_mmu_write_spte() (tdp_iter.h, v5.18+): an SPTE the CPU or the fast
 * fault may change behind mmu_lock is written with xchg so that their update is
 * returned, not lost; anything else with a plain store. Returns the old value.
 */
export function* kvm_tdp_mmu_write_spte(
  sptep: Atomic,
  old_spte: number,
  new_spte: number,
  level: number,
): Gen<number> {
  if (currentKvm().features.volatileSpteXchg && kvm_tdp_mmu_spte_need_atomic_write(old_spte, level)) {
    return yield* kvm_tdp_mmu_write_spte_atomic(sptep, new_spte);
  }
  yield* __kvm_tdp_mmu_write_spte(sptep, new_spte);
  check_no_lost_dirty(sptep, old_spte, new_spte);
  return old_spte;
}

/**
 * spte-lost-dirty, after a plain store over an SPTE: the store replaced a Dirty bit that the
 * writer's idea of the old value did not have (the CPU set it in between), and the new value does
 * not carry it either. KVM will never see that the guest wrote the page (ba3a6120a4e7).
 */
export function check_no_lost_dirty(sptep: Atomic, old_spte: number, new_spte: number): void {
  const was = sptep.overwritten;
  if (
    !is_shadow_present_pte(was) ||
    !is_dirty_spte(was) ||
    is_dirty_spte(old_spte) ||
    is_dirty_spte(new_spte)
  )
    return;
  host().report({
    invariant: "spte-lost-dirty",
    message: `${currentFn()} stored over ${sptep.name} with a plain write, taking it for ${hex(old_spte)}; the Dirty bit the CPU had set (${hex(was)}) is lost`,
    details: { sptep: sptep.name, believed: old_spte, overwritten: was, stored: new_spte },
  });
}

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

/**
 * tdp_mmu_clear_spte_bits() (tdp_iter.h, v6.6+): clear `mask`, atomically when
 * the SPTE has volatile bits. Caller holds mmu_lock for write. Returns the old value.
 */
export const tdp_mmu_clear_spte_bits = modelFn(
  "tdp_mmu_clear_spte_bits",
  function* (sptep: Atomic, old_spte: number, mask: number, level: number): Gen<number> {
    rcu_dereference_check(`sptep ${sptep.name}`);
    if (kvm_tdp_mmu_spte_need_atomic_write(old_spte, level)) return yield* atomic_fetch_andnot(sptep, mask);
    const new_spte = old_spte - andMask(old_spte, mask);
    yield* WRITE_ONCE(sptep, new_spte);
    check_no_lost_dirty(sptep, old_spte, new_spte);
    return old_spte;
  },
);

/**
 * tdp_mmu_clear_spte_bits_atomic() (tdp_iter.h, v6.15, b146a9b34aed): lockless
 * aging clears bits with one atomic AND, so a D bit the CPU sets concurrently
 * survives. Returns the old value.
 */
export const tdp_mmu_clear_spte_bits_atomic = modelFn(
  "tdp_mmu_clear_spte_bits_atomic",
  function* (sptep: Atomic, mask: number): Gen<number> {
    rcu_dereference_check(`sptep ${sptep.name}`);
    return yield* atomic_fetch_andnot(sptep, mask);
  },
);

/** Bookkeeping for the invariant checks after an SPTE write (ghost only). */
function noteWrite(kvm: Kvm, sptep: Atomic, gfn: number, level: number, old: number, new_spte: number): void {
  ghost_spte_replaced(kvm, old, level);
  check_spte_within_max_gfn(kvm, sptep.name, gfn, level, new_spte);
  if (new_spte === FROZEN_SPTE) ghost_spte_frozen(kvm, sptep);
  if (!is_shadow_present_pte(old)) return;
  const npages = pagesPerHpage(kvm.geometry, level);
  if (!is_shadow_present_pte(new_spte)) ghost_spte_zapped(kvm, sptep, gfn, npages, old);
  else if (!is_last_spte(old, level) && is_last_spte(new_spte, level))
    ghost_table_collapsed(kvm, sptep, gfn, npages, old);
  else if (is_last_spte(old, level) && !is_last_spte(new_spte, level)) {
    const child = kvm.pages.get(spte_to_pfn(new_spte));
    if (child !== undefined) check_split_preserves_mapping(kvm, sptep.name, level, old, child.spt);
  } else ghost_spte_protected(kvm, sptep, gfn, npages, old, new_spte);
}

/**
 * __tdp_mmu_set_spte_atomic() (tdp_mmu.c, v6.x): cmpxchg the SPTE from
 * iter.old_spte to `new_spte`. No lock is asserted: lockless aging (6.15) uses
 * it too. On failure iter.old_spte is refreshed and -EBUSY returned.
 */
export const __tdp_mmu_set_spte_atomic = modelFn(
  "__tdp_mmu_set_spte_atomic",
  function* (kvm: Kvm, iter: TdpIter, new_spte: number): Gen<number> {
    check_iter_not_stale(iter);
    // Only the freezer may change a frozen SPTE; callers check before getting here.
    WARN_ON_ONCE(iter.yielded || is_frozen_spte(iter.old_spte), "iter->yielded || is_frozen_spte(old_spte)");
    rcu_dereference_check(`sptep ${iter.sptep.name}`);
    const r = yield* try_cmpxchg(iter.sptep, iter.old_spte, new_spte);
    if (!r.ok) {
      iter.old_spte = r.old;
      return EBUSY;
    }
    noteWrite(kvm, iter.sptep, iter.gfn, iter.level, iter.old_spte, new_spte);
    return 0;
  },
);

/**
 * tdp_mmu_set_spte_atomic() (tdp_mmu.c, v5.18+ semantics): under the read
 * mmu_lock, cmpxchg the SPTE and, if that worked, do the bookkeeping with
 * shared=true. Returns 0 or -EBUSY (iter.old_spte then holds the current value).
 */
export const tdp_mmu_set_spte_atomic = modelFn(
  "tdp_mmu_set_spte_atomic",
  function* (kvm: Kvm, iter: TdpIter, new_spte: number): Gen<number> {
    lockdep_assert_held_read(kvm.mmu_lock);
    const ret = yield* __tdp_mmu_set_spte_atomic(kvm, iter, new_spte);
    if (ret !== 0) return ret;
    yield* handle_changed_spte(kvm, iter.as_id, iter.gfn, iter.old_spte, new_spte, iter.level, true);
    return 0;
  },
);

/**
 * tdp_mmu_zap_spte_atomic() (tdp_mmu.c, v6.6+ order): freeze the SPTE so no
 * other thread can install anything in its place, flush the TLBs, make it
 * non-present, and only then tear down whatever it pointed at.
 */
export const tdp_mmu_zap_spte_atomic = modelFn(
  "tdp_mmu_zap_spte_atomic",
  function* (kvm: Kvm, iter: TdpIter): Gen<number> {
    lockdep_assert_held_read(kvm.mmu_lock);
    const ret = yield* __tdp_mmu_set_spte_atomic(kvm, iter, FROZEN_SPTE);
    if (ret !== 0) return ret;
    yield* kvm_flush_remote_tlbs_gfn(kvm, iter.gfn, iter.level);
    // Nobody else writes a frozen SPTE: a plain store is enough.
    yield* __kvm_tdp_mmu_write_spte(iter.sptep, SHADOW_NONPRESENT_VALUE);
    yield* handle_changed_spte(
      kvm,
      iter.as_id,
      iter.gfn,
      iter.old_spte,
      SHADOW_NONPRESENT_VALUE,
      iter.level,
      true,
    );
    return 0;
  },
);

/**
 * tdp_mmu_set_spte() (tdp_mmu.c, v5.18+): under the write mmu_lock, write the
 * SPTE (atomically if it has volatile bits) and do the bookkeeping with
 * shared=false. Returns the old value, which may differ from `old_spte` if the
 * CPU or the fast fault changed a volatile bit meanwhile.
 */
export const tdp_mmu_set_spte = modelFn(
  "tdp_mmu_set_spte",
  function* (
    kvm: Kvm,
    as_id: number,
    sptep: Atomic,
    old_spte: number,
    new_spte: number,
    gfn: number,
    level: number,
  ): Gen<number> {
    lockdep_assert_held_write(kvm.mmu_lock);
    // With mmu_lock held for write nobody needs the frozen value; readers would use the atomic path.
    WARN_ON_ONCE(is_frozen_spte(old_spte) || is_frozen_spte(new_spte), "frozen SPTE in tdp_mmu_set_spte");
    const old = yield* kvm_tdp_mmu_write_spte(sptep, old_spte, new_spte, level);
    noteWrite(kvm, sptep, gfn, level, old, new_spte);
    yield* handle_changed_spte(kvm, as_id, gfn, old, new_spte, level, false);
    return old;
  },
);

/** tdp_mmu_iter_set_spte() (tdp_mmu.c, v6.6+): tdp_mmu_set_spte() at the iterator's position. */
export const tdp_mmu_iter_set_spte = modelFn(
  "tdp_mmu_iter_set_spte",
  function* (kvm: Kvm, iter: TdpIter, new_spte: number): Gen<void> {
    check_iter_not_stale(iter);
    WARN_ON_ONCE(iter.yielded, "iter->yielded");
    iter.old_spte = yield* tdp_mmu_set_spte(
      kvm,
      iter.as_id,
      iter.sptep,
      iter.old_spte,
      new_spte,
      iter.gfn,
      iter.level,
    );
  },
);

/**
 * handle_changed_spte() (tdp_mmu.c, v6.x): what an SPTE change implies. A
 * present leaf never turns into a present leaf for another pfn (BUG); a present
 * non-leaf that was removed or replaced by a leaf takes its page table with it.
 */
export const handle_changed_spte = modelFn(
  "handle_changed_spte",
  function* (
    kvm: Kvm,
    as_id: number,
    gfn: number,
    old_spte: number,
    new_spte: number,
    level: number,
    shared: boolean,
  ): Gen<void> {
    const was_present = is_shadow_present_pte(old_spte);
    const is_present = is_shadow_present_pte(new_spte);
    const was_leaf = was_present && is_last_spte(old_spte, level);
    const is_leaf = is_present && is_last_spte(new_spte, level);
    const pfn_changed = spte_to_pfn(old_spte) !== spte_to_pfn(new_spte);

    WARN_ON_ONCE(level > PT64_ROOT_MAX_LEVEL, "level > PT64_ROOT_MAX_LEVEL");
    WARN_ON_ONCE(level < 1, "level < PG_LEVEL_4K");
    WARN_ON_ONCE(gfn % pagesPerHpage(kvm.geometry, level) !== 0, "gfn not aligned to level", { gfn, level });

    // A notifier must zap a leaf before the primary MMU changes the page behind it.
    if (was_leaf && is_leaf && pfn_changed) {
      BUG(`present leaf SPTE for gfn ${gfn} (as_id ${as_id}) replaced with one for another pfn`);
    }
    if (old_spte === new_spte) return;
    note_spte_changed(kvm, `the SPTE for gfn ${gfn} at level ${level}`);

    if (!was_present && !is_present) {
      // Only the frozen marker (or MMIO, not modelled) moves between non-present values.
      WARN_ON_ONCE(!is_frozen_spte(new_spte) && !is_frozen_spte(old_spte), "unexpected non-present change");
      return;
    }
    if (was_present && !is_present) kvm.stats.sptesZapped++;

    if (was_present && !was_leaf && (is_leaf || !is_present || WARN_ON_ONCE(pfn_changed, "pfn_changed"))) {
      yield* handle_removed_pt(kvm, spte_to_child_pt(kvm, old_spte, level)!, shared);
    }
  },
);

/** tdp_account_mmu_page() (tdp_mmu.c, v6.3+): one more live non-root page table. */
function* tdp_account_mmu_page(kvm: Kvm): Gen<void> {
  yield* atomic_fetch_add(kvm.tdp_mmu_pages, 1);
}

/** tdp_unaccount_mmu_page() (tdp_mmu.c, v6.3+). */
function* tdp_unaccount_mmu_page(kvm: Kvm): Gen<void> {
  yield* atomic_fetch_sub(kvm.tdp_mmu_pages, 1);
}

/**
 * tdp_mmu_unlink_sp() (tdp_mmu.c, v6.3+): unaccount the page and drop its NX
 * huge page tracking, which is protected by tdp_mmu_pages_lock because faults
 * add to it under the read mmu_lock. The flag is read without the lock: it is
 * only ever cleared after the page was linked, and whoever clears it (this, or
 * the 6.18 recovery worker) takes the page off the list in the same section.
 */
export const tdp_mmu_unlink_sp = modelFn(
  "tdp_mmu_unlink_sp",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<void> {
    yield* tdp_unaccount_mmu_page(kvm);
    if (!(yield* nx_huge_page_disallowed(sp))) return;
    yield* spin_lock(kvm.tdp_mmu_pages_lock);
    yield* unaccount_nx_huge_page(kvm, sp);
    yield* spin_unlock(kvm.tdp_mmu_pages_lock);
  },
);

/**
 * cpu_relax() in the freeze loop of handle_removed_pt(): another thread froze
 * the SPTE and will move it on. Re-freezing a frozen SPTE changes nothing, so
 * the spin is modelled as waiting until the SPTE is no longer frozen.
 */
function* wait_until_not_frozen(sptep: Atomic): Gen<void> {
  yield op("wait", sptep, "cpu_relax", () => !is_frozen_spte(sptep.v));
  touch(sptep, "cpu_relax");
}

/**
 * handle_removed_pt() (tdp_mmu.c, v6.x; handle_removed_tdp_mmu_page before
 * 5.18): the page table `pt` was unlinked by this thread. Freeze every child so
 * that no other thread can install anything in it, handle each child's removal
 * (recursing into child tables), and free the page after an RCU grace period:
 * lockless walkers may still be reading it.
 */
export const handle_removed_pt = modelFn(
  "handle_removed_pt",
  function* (kvm: Kvm, pt: KvmMmuPage, shared: boolean): Gen<void> {
    // A subtree of a compressed tree that nobody has looked into may be removed as one block.
    if (is_pristine_subtree(pt)) {
      yield* handle_removed_pristine_pt(kvm, pt, shared, () => remove_pt(kvm, pt, shared));
      return;
    }
    yield* remove_pt(kvm, pt, shared);
  },
);

/** The body of handle_removed_pt(), runnable on its own for compressed.ts to record. */
function* remove_pt(kvm: Kvm, pt: KvmMmuPage, shared: boolean): Gen<void> {
  const sp = pt;
  const level = sp.level;
  const base_gfn = sp.gfn;
  const as_id = roleAsId(sp.role.v);
  yield* tdp_mmu_unlink_sp(kvm, sp);

  for (let i = 0; i < sp.spt.length; i++) {
    const sptep = sp.spt[i];
    const gfn = base_gfn + i * pagesPerHpage(kvm.geometry, level);
    let old_spte: number;
    if (shared) {
      // Another thread may have frozen this SPTE (tdp_mmu_zap_spte_atomic) and will write it
      // back to non-present; keep freezing until we are the one who froze a real value.
      for (;;) {
        old_spte = yield* kvm_tdp_mmu_write_spte_atomic(sptep, FROZEN_SPTE);
        if (!is_frozen_spte(old_spte)) break;
        yield* wait_until_not_frozen(sptep);
      }
    } else {
      // Exclusive: nothing can make a non-present SPTE present; a present one may still get
      // its D bit from the CPU through a stale TLB entry, so write it atomically if needed.
      old_spte = yield* kvm_tdp_mmu_read_spte(sptep);
      if (!is_shadow_present_pte(old_spte)) continue;
      old_spte = yield* kvm_tdp_mmu_write_spte(sptep, old_spte, FROZEN_SPTE, level);
    }
    ghost_spte_frozen(kvm, sptep);
    yield* handle_changed_spte(kvm, as_id, gfn, old_spte, FROZEN_SPTE, level, shared);
  }

  // Before 5.18 (bb95dfb9e2df) the remover flushed here; since then the caller owns the flush.
  if (preZapOverhaul(kvm)) yield* kvm_flush_remote_tlbs(kvm);

  yield* call_rcu(
    sp.rcu_head,
    () => tdp_mmu_free_sp_rcu_callback(sp, kvm),
    `tdp_mmu_free_sp_rcu_callback(${sp.kobj.name})`,
  );
}

/**
 * tdp_mmu_free_sp() (tdp_mmu.c): free the header and the page table at once.
 * Legal only for a page nobody can reach: one that was never linked, or (via
 * the RCU callback) one unlinked a grace period ago.
 */
export const tdp_mmu_free_sp = modelFn(
  "tdp_mmu_free_sp",
  function* (sp: KvmMmuPage, kvm: Kvm = currentKvm()): Gen<void> {
    check_sp_free(kvm, sp);
    yield* kfree(sp.kobj);
    if (kvm.pages.get(sp.pageId) === sp) {
      kvm.pages.delete(sp.pageId);
      remember_freed_sp(kvm, sp);
      if (sp.isRoot) {
        kvm.stats.rootsFreed++;
        yield* free_root_frame(kvm, sp);
      } else kvm.stats.pagesFreed++;
    }
  },
);

/**
 * tdp_mmu_free_sp_rcu_callback() (tdp_mmu.c, v5.12+): the call_rcu() callback
 * that frees a page table or a root once no RCU reader can still see it.
 */
export const tdp_mmu_free_sp_rcu_callback = modelFn(
  "tdp_mmu_free_sp_rcu_callback",
  function* (sp: KvmMmuPage, kvm: Kvm = currentKvm()): Gen<void> {
    yield* tdp_mmu_free_sp(sp, kvm);
  },
);

/**
 * tdp_mmu_alloc_sp() + tdp_mmu_init_child_sp() (tdp_mmu.c, v6.x): a new, not
 * yet visible page table for the SPTE the iterator is on, with the parent's
 * role one level lower. The role word is read plainly: only a root's `invalid`
 * bit ever changes, under the write mmu_lock (excluded: the caller holds it for
 * read) or by E3's last put (impossible: the walker holds a reference).
 */
export function tdp_mmu_init_child_sp(kvm: Kvm, iter: TdpIter): KvmMmuPage {
  const parent = iter.sp;
  let role = parent.role.v;
  role = ROLE.level.set(role, ROLE.level.get(role) - 1);
  return tdp_mmu_alloc_sp(kvm, role, iter.gfn, iter.sptep, false);
}

/**
 * tdp_mmu_link_sp() (tdp_mmu.c, v6.x): point the iterator's SPTE at the new
 * page table `sp` (cmpxchg under the read lock, a plain set under the write
 * lock) and account it. Non-zero if another thread changed the SPTE first.
 */
export const tdp_mmu_link_sp = modelFn(
  "tdp_mmu_link_sp",
  function* (kvm: Kvm, iter: TdpIter, sp: KvmMmuPage, shared: boolean): Gen<number> {
    const spte = make_nonleaf_spte(sp.pageId);
    if (shared) {
      const ret = yield* tdp_mmu_set_spte_atomic(kvm, iter, spte);
      if (ret !== 0) return ret;
    } else {
      yield* tdp_mmu_iter_set_spte(kvm, iter, spte);
    }
    ghost_sp_linked(kvm, sp);
    yield* tdp_account_mmu_page(kvm);
    return 0;
  },
);

/**
 * make_small_spte() (spte.c, v6.13+; make_huge_page_split_spte before): entry
 * `index` of the table that replaces a huge SPTE, mapping the matching part of
 * the huge page with the same permissions and A/D state.
 */
export function make_small_spte(kvm: Kvm, huge_spte: number, child_level: number, index: number): number {
  const pfn = spte_to_pfn(huge_spte);
  const child_pfn = pfn + index * pagesPerHpage(kvm.geometry, child_level);
  let spte = huge_spte + (child_pfn - pfn) * 2 ** 12;
  if (child_level === 1) spte = withBit(spte, SPTE_BIT.huge, false);
  return spte;
}

/**
 * tdp_mmu_split_huge_page() (tdp_mmu.c, v5.18+): fill `sp` with the pieces of
 * the huge SPTE (no atomics: nobody can see `sp` yet) and link it in its place.
 * The translation is the same either way, so no flush is needed.
 */
export const tdp_mmu_split_huge_page = modelFn(
  "tdp_mmu_split_huge_page",
  function* (kvm: Kvm, iter: TdpIter, sp: KvmMmuPage, shared: boolean): Gen<number> {
    const huge_spte = iter.old_spte;
    for (let i = 0; i < sp.spt.length; i++) sp.spt[i].v = make_small_spte(kvm, huge_spte, sp.level, i);
    return yield* tdp_mmu_link_sp(kvm, iter, sp, shared);
  },
);
