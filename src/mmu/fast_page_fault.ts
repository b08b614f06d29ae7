import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type Atomic, try_cmpxchg } from "../kernel/atomic.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { is_mmu_writable_spte } from "./rmap_spte.js";
import { is_last_spte, is_shadow_present_pte, is_writable_pte, SPTE_BIT, spteSetBit } from "./spte.js";
import { kvm_tdp_mmu_read_spte, SPTE_INDEX, spte_to_child_pt } from "./tdp_iter.js";
import { KVM_MEM_LOG_DIRTY_PAGES, mark_page_dirty_in_slot, type RetPf } from "./tdp_mmu_map.js";
import type { KvmMmuPage, Memslot, Vcpu } from "./types.js";

/** What the fast path needs of a fault: the gfn, whether it writes, and what the exit said. */
export interface FastFault {
  readonly gfn: number;
  readonly write: boolean;
  /** The EPT violation hit a present SPTE (the exit qualification's read/write/execute bits). */
  readonly present: boolean;
  readonly slot: Memslot;
  /**
   * The slot's flags as the fault's memslot lookup saw them: fault->slot points into the memslot
   * array of that lookup, which a memslot update replaces rather than changes in place.
   */
  readonly slotFlags: number;
}

/** The last SPTE the lockless walk reached, with its level. */
export interface LastSpte {
  readonly sptep: Atomic;
  readonly spte: number;
  readonly level: number;
}

/**
 * kvm_tdp_mmu_fast_pf_get_last_sptep() (tdp_mmu.c, v6.x): walk the vCPU's root towards `gfn`
 * without mmu_lock, one READ_ONCE per level, and return the last SPTE reached (a leaf, or the
 * entry that is not present). The caller holds rcu_read_lock(), which keeps the tables it steps
 * through from being freed under it.
 */
export const kvm_tdp_mmu_fast_pf_get_last_sptep = modelFn(
  "kvm_tdp_mmu_fast_pf_get_last_sptep",
  function* (vcpu: Vcpu, gfn: number): Gen<LastSpte> {
    const kvm = vcpu.kvm;
    let table: KvmMmuPage | null = vcpu.root!;
    let last: LastSpte | null = null;
    for (let level = table.level; table !== null && level >= 1; level--) {
      const sptep: Atomic = table.spt[SPTE_INDEX(kvm, gfn, level)];
      const spte = yield* kvm_tdp_mmu_read_spte(sptep);
      last = { sptep, spte, level };
      if (!is_shadow_present_pte(spte) || is_last_spte(spte, level)) break;
      table = spte_to_child_pt(kvm, spte, level);
    }
    return last!;
  },
);

/** is_access_allowed() (mmu.c): the SPTE grants what the fault asked for (A/D enabled, no exec faults). */
function is_access_allowed(write: boolean, spte: number): boolean {
  return is_shadow_present_pte(spte) && (!write || is_writable_pte(spte));
}

/**
 * fast_pf_fix_direct_spte() (mmu.c): install `new_spte` with a cmpxchg from the value the walk read,
 * so that anything that changed the SPTE meanwhile (a zap, write-protection) wins and the fault is
 * retried; a Writable bit set here logs the page, as the slow path's make_spte() would.
 */
export const fast_pf_fix_direct_spte = modelFn(
  "fast_pf_fix_direct_spte",
  function* (fault: FastFault, sptep: Atomic, old_spte: number, new_spte: number): Gen<boolean> {
    const r = yield* try_cmpxchg(sptep, old_spte, new_spte);
    if (!r.ok) return false;
    if (is_writable_pte(new_spte) && !is_writable_pte(old_spte))
      yield* mark_page_dirty_in_slot(fault.slot, fault.gfn);
    return true;
  },
);

/**
 * fast_page_fault() (mmu.c, v6.x): a write to a present SPTE that only lacks
 * Writable, which write-protection for dirty logging cleared and which is still MMU-writable, is
 * fixed without mmu_lock, under RCU alone. RET_PF_INVALID sends the fault down the slow path.
 */
export const fast_page_fault = modelFn(
  "fast_page_fault",
  function* (vcpu: Vcpu, fault: FastFault): Gen<RetPf> {
    // page_fault_can_be_fast(): with A/D bits on, only a write to a present SPTE qualifies.
    if (!fault.present || !fault.write) return "RET_PF_INVALID";
    let ret: RetPf = "RET_PF_INVALID";
    yield* rcu_read_lock();
    for (let retry = 0; ; retry++) {
      const { sptep, spte, level } = yield* kvm_tdp_mmu_fast_pf_get_last_sptep(vcpu, fault.gfn);
      if (!is_shadow_present_pte(spte) || !is_last_spte(spte, level)) break;
      if (is_access_allowed(fault.write, spte)) {
        ret = "RET_PF_SPURIOUS";
        break;
      }
      let new_spte = spte;
      if (fault.write && is_mmu_writable_spte(new_spte)) {
        new_spte = spteSetBit(new_spte, SPTE_BIT.writable, true);
        // A huge page in a dirty-logged slot must be split by the slow path, not made writable whole.
        if (level > 1 && (fault.slotFlags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) break;
      }
      if (new_spte === spte || !is_access_allowed(fault.write, new_spte)) break;
      if (yield* fast_pf_fix_direct_spte(fault, sptep, spte, new_spte)) {
        ret = "RET_PF_FIXED";
        break;
      }
      if (retry >= 4) break;
    }
    yield* rcu_read_unlock();
    return ret;
  },
);
