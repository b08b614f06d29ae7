import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { READ_ONCE } from "../kernel/atomic.js";
import { lockdep_assert_held_read, lockdep_assert_held_write } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { list_empty, list_next_entry } from "../kernel/rculist.js";
import {
  cond_resched_rwlock_read,
  cond_resched_rwlock_write,
  read_lock,
  read_unlock,
  rwlock_needbreak,
  write_lock,
  write_unlock,
} from "../kernel/rwlock.js";
import { need_resched } from "../kernel/sched.js";
import { spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import { hostStateIfAny } from "./host_mm.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import { unaccount_nx_huge_page } from "./nx_huge_page_list.js";
import { roleAsId } from "./role.js";
import { is_shadow_present_pte, SHADOW_NONPRESENT_VALUE } from "./spte.js";
import { kvm_tdp_mmu_read_spte, spte_to_child_pt, TdpIter } from "./tdp_iter.js";
import { gfn_to_memslot, KVM_MEM_LOG_DIRTY_PAGES } from "./tdp_mmu_map.js";
import { tdp_mmu_set_spte, tdp_mmu_set_spte_atomic } from "./tdp_mmu_spte.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * NX huge page recovery (arch/x86/kvm/mmu/mmu.c and tdp_mmu.c). With the iTLB multihit mitigation,
 * a fetch maps 4K and the page table it needed is listed on possible_nx_huge_pages; a per-VM
 * worker wakes up periodically and zaps a share of the listed tables, so that the guest can map
 * the range huge again if it no longer executes from it.
 */

/**
 * kvm_mmu_sp_dirty_logging_enabled() (mmu.c, v6.18; open-coded before): pages of a dirty-logged
 * slot are only unaccounted, since they would be faulted back as 4K anyway. The memslot is looked
 * up under SRCU; where a task can replace the memslot array, the lookup is ordered against it.
 */
function* kvm_mmu_sp_dirty_logging_enabled(kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
  const hs = hostStateIfAny(kvm);
  if (hs !== undefined) yield* READ_ONCE(hs.memslots);
  const slot = gfn_to_memslot(kvm, roleAsId(sp.role.v), sp.gfn);
  return slot !== null && (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
}

/**
 * kvm_tdp_mmu_zap_sp() (tdp_mmu.c, v6.1-6.17): with mmu_lock held for write, zap the SPTE that
 * points at `sp`; handle_removed_pt() unlinks the table and tdp_mmu_unlink_sp() takes it off the
 * list. Nobody else can change a non-leaf SPTE under the write lock, so the SPTE must still be
 * present. The caller flushes.
 */
export const kvm_tdp_mmu_zap_sp = modelFn(
  "kvm_tdp_mmu_zap_sp",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
    lockdep_assert_held_write(kvm.mmu_lock);
    if (WARN_ON_ONCE(sp.ptep === null, "!sp->ptep")) return false;
    const old_spte = yield* kvm_tdp_mmu_read_spte(sp.ptep!);
    if (WARN_ON_ONCE(!is_shadow_present_pte(old_spte), "!is_shadow_present_pte(old_spte)")) return false;
    yield* tdp_mmu_set_spte(
      kvm,
      roleAsId(sp.role.v),
      sp.ptep!,
      old_spte,
      SHADOW_NONPRESENT_VALUE,
      sp.gfn,
      sp.level + 1,
    );
    return true;
  },
);

/**
 * kvm_tdp_mmu_zap_possible_nx_huge_page() (tdp_mmu.c, v6.18, a57750909580): the same zap with
 * mmu_lock held for read. Another task may have zapped or replaced the SPTE since the page was
 * taken off the list (a zap of an invalid root, huge page recovery, a fault splitting elsewhere),
 * so it zaps only if the SPTE still points at `sp`'s table, and only with a cmpxchg. A lost
 * cmpxchg that still finds `sp` is impossible (non-leaf SPTEs change only by zap or replacement).
 */
export const kvm_tdp_mmu_zap_possible_nx_huge_page = modelFn(
  "kvm_tdp_mmu_zap_possible_nx_huge_page",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<boolean> {
    const iter = new TdpIter(kvm);
    iter.old_spte = sp.ptep === null ? 0 : yield* kvm_tdp_mmu_read_spte(sp.ptep);
    iter.sptep = sp.ptep!;
    iter.level = sp.level + 1;
    iter.gfn = sp.gfn;
    iter.as_id = roleAsId(sp.role.v);
    lockdep_assert_held_read(kvm.mmu_lock);
    // Roots have no parent SPTE, and are never listed.
    if (WARN_ON_ONCE(sp.ptep === null, "!sp->ptep")) return false;
    // spte_to_child_pt() is null for a non-present or frozen SPTE, and for a leaf.
    if (spte_to_child_pt(kvm, iter.old_spte, iter.level) !== sp) return false;
    if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, SHADOW_NONPRESENT_VALUE)) !== 0) {
      WARN_ON_ONCE(spte_to_child_pt(kvm, iter.old_spte, iter.level) === sp, "SPTE still points at sp");
      return false;
    }
    return true;
  },
);

/** The default of the nx_huge_pages_recovery_ratio module parameter (mmu.c). */
export const NX_HUGE_PAGES_RECOVERY_RATIO = 60;

/**
 * nx_huge_pages_to_zap() (mmu.c): the share of the listed pages one pass zaps,
 * DIV_ROUND_UP(nr_pages, nx_huge_pages_recovery_ratio), read before mmu_lock is taken.
 */
function* nx_huge_pages_to_zap(kvm: Kvm): Gen<number> {
  const nx = kvm.nx!;
  const pages = yield* READ_ONCE(nx.nx_lpage_splits);
  return nx.recovery_ratio === 0 ? 0 : Math.ceil(pages / nx.recovery_ratio);
}

/**
 * kvm_recover_nx_huge_pages() (mmu.c, v6.1+; the TDP MMU part): zap up to to_zap pages from the
 * head of possible_nx_huge_pages, inside RCU (the zapped tables are freed by RCU callbacks, and the
 * flush must come before they can be), flushing before every yield and at the end.
 * - Up to 6.17: mmu_lock held for write, which keeps every other writer of the list out; the page
 *   leaves the list when its zap unlinks it.
 * - From 6.18 (features.nxRecoveryUnderReadLock): mmu_lock held for read, so vCPUs keep faulting.
 *   The list is read and the page unaccounted (off the list, flag cleared) under
 *   tdp_mmu_pages_lock, before the zap: a concurrent tdp_mmu_unlink_sp() then finds the flag clear
 *   and leaves the list alone, and the zap re-checks the SPTE.
 */
export const kvm_recover_nx_huge_pages = modelFn(
  "kvm_recover_nx_huge_pages",
  function* (kvm: Kvm): Gen<void> {
    const nx = kvm.nx;
    if (nx === null) return;
    const shared = kvm.features.nxRecoveryUnderReadLock;
    let to_zap = yield* nx_huge_pages_to_zap(kvm);
    let flush = false;
    if (shared) yield* read_lock(kvm.mmu_lock);
    else yield* write_lock(kvm.mmu_lock);
    yield* rcu_read_lock();
    for (; to_zap > 0; to_zap--) {
      if (shared) yield* spin_lock(kvm.tdp_mmu_pages_lock);
      if (yield* list_empty(nx.possible_nx_huge_pages)) {
        if (shared) yield* spin_unlock(kvm.tdp_mmu_pages_lock);
        break;
      }
      const first = yield* list_next_entry(nx.possible_nx_huge_pages, nx.possible_nx_huge_pages, {
        rcu: false,
      });
      const sp = first!.container!;
      WARN_ON_ONCE(!sp.nx_huge_page_disallowed, "!sp->nx_huge_page_disallowed");
      if (shared) {
        yield* unaccount_nx_huge_page(kvm, sp);
        yield* spin_unlock(kvm.tdp_mmu_pages_lock);
      }
      if (!(yield* kvm_mmu_sp_dirty_logging_enabled(kvm, sp))) {
        if (shared) flush = (yield* kvm_tdp_mmu_zap_possible_nx_huge_page(kvm, sp)) || flush;
        else flush = (yield* kvm_tdp_mmu_zap_sp(kvm, sp)) || flush;
      } else if (!shared) yield* unaccount_nx_huge_page(kvm, sp);
      WARN_ON_ONCE(sp.nx_huge_page_disallowed, "sp->nx_huge_page_disallowed");
      if ((yield* need_resched()) || (yield* rwlock_needbreak(kvm.mmu_lock))) {
        if (flush) yield* kvm_flush_remote_tlbs(kvm);
        yield* rcu_read_unlock();
        if (shared) yield* cond_resched_rwlock_read(kvm.mmu_lock);
        else yield* cond_resched_rwlock_write(kvm.mmu_lock);
        flush = false;
        yield* rcu_read_lock();
      }
    }
    // kvm_mmu_remote_flush_or_zap(): the TDP MMU has no invalid_list, only the flush.
    if (flush) yield* kvm_flush_remote_tlbs(kvm);
    yield* rcu_read_unlock();
    if (shared) yield* read_unlock(kvm.mmu_lock);
    else yield* write_unlock(kvm.mmu_lock);
  },
);

/**
 * kvm_nx_huge_page_recovery_worker() (mmu.c, v6.13+ as a vhost_task; a kthread before): one
 * wake-up of the per-VM worker. Its period (nx_huge_pages_recovery_period_ms) is not modelled: a
 * wake-up may come at any point of the run.
 */
export const kvm_nx_huge_page_recovery_worker = modelFn(
  "kvm_nx_huge_page_recovery_worker",
  function* (kvm: Kvm): Gen<void> {
    yield* kvm_recover_nx_huge_pages(kvm);
  },
);

/** nxRecoveryTask: the VM's NX huge page recovery worker, woken `passes` times. */
export function* nxRecoveryTask(kvm: Kvm, passes = 1): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  for (let i = 0; i < passes; i++) yield* kvm_nx_huge_page_recovery_worker(kvm);
  yield* kvm_put_kvm(kvm);
}
