import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { lockdep_is_held, lockdep_is_held_type } from "../kernel/lockdep.js";
import { list_add_tail_rcu, list_del_init, list_empty } from "../kernel/rculist.js";
import { op, touch } from "../kernel/shared.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * The list of pages the NX huge page mitigation split (mmu.c, v6.1+; per MMU type since 6.18). Its
 * writers hold mmu_lock for write, or mmu_lock for read and tdp_mmu_pages_lock: vCPU faults add
 * pages under the read lock, and the TDP MMU unlinks pages under the read lock too. The kernel
 * states this in struct kvm_arch's comment; the model asserts it as lockdep would.
 */
function assert_possible_nx_huge_pages_locked(kvm: Kvm): void {
  if (lockdep_is_held_type(kvm.mmu_lock, 0) || lockdep_is_held(kvm.tdp_mmu_pages_lock)) return;
  host().report({
    invariant: "lockdep",
    message: `possible_nx_huge_pages changed in ${currentFn()} without mmu_lock held for write or tdp_mmu_pages_lock`,
  });
}

/**
 * READ_ONCE(sp->nx_huge_page_disallowed). tdp_mmu_unlink_sp() and disallowed_hugepage_adjust() read
 * the flag without tdp_mmu_pages_lock while the 6.18 recovery worker may clear it, so the read is an
 * access: of the page's list link, which stands for the flag and the link together (both change in
 * the same tdp_mmu_pages_lock section). Without the mitigation the flag is never set: no access.
 */
export function* nx_huge_page_disallowed(sp: KvmMmuPage): Gen<boolean> {
  const link = sp.possible_nx_huge_page_link;
  if (link === null) return sp.nx_huge_page_disallowed;
  yield op("read", link, "READ_ONCE nx_huge_page_disallowed");
  touch(link, "READ_ONCE nx_huge_page_disallowed");
  return sp.nx_huge_page_disallowed;
}

/**
 * track_possible_nx_huge_page() (mmu.c, v6.1+, Sean Christopherson's 2022 NX huge page series): put `sp` on the list the recovery
 * worker zaps from, once, and count it in nx_lpage_splits.
 */
export const track_possible_nx_huge_page = modelFn(
  "track_possible_nx_huge_page",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<void> {
    assert_possible_nx_huge_pages_locked(kvm);
    const nx = kvm.nx;
    const link = sp.possible_nx_huge_page_link;
    if (nx === null || link === null) return;
    // Already listed: a split page is tracked by the fault that linked it, and only once.
    if (!(yield* list_empty(link))) return;
    yield* WRITE_ONCE(nx.nx_lpage_splits, (yield* READ_ONCE(nx.nx_lpage_splits)) + 1);
    yield* list_add_tail_rcu(link, nx.possible_nx_huge_pages);
  },
);

/** untrack_possible_nx_huge_page() (mmu.c, v6.1+): take `sp` off the list, if it is on it. */
export const untrack_possible_nx_huge_page = modelFn(
  "untrack_possible_nx_huge_page",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<void> {
    assert_possible_nx_huge_pages_locked(kvm);
    const nx = kvm.nx;
    const link = sp.possible_nx_huge_page_link;
    if (nx === null || link === null) return;
    if (yield* list_empty(link)) return;
    yield* WRITE_ONCE(nx.nx_lpage_splits, (yield* READ_ONCE(nx.nx_lpage_splits)) - 1);
    yield* list_del_init(link);
  },
);

/**
 * unaccount_nx_huge_page() (mmu.c, v6.1+): the page no longer stands for a disallowed huge page.
 * Clearing the flag under the same lock as the list is what lets tdp_mmu_unlink_sp() and the
 * recovery worker agree on who takes the page off the list.
 */
export const unaccount_nx_huge_page = modelFn(
  "unaccount_nx_huge_page",
  function* (kvm: Kvm, sp: KvmMmuPage): Gen<void> {
    assert_possible_nx_huge_pages_locked(kvm);
    const link = sp.possible_nx_huge_page_link;
    if (link !== null) {
      yield op("write", link, "nx_huge_page_disallowed = false");
      touch(link, "nx_huge_page_disallowed = false");
    }
    sp.nx_huge_page_disallowed = false;
    yield* untrack_possible_nx_huge_page(kvm, sp);
  },
);
