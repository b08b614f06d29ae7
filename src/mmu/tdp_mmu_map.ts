import { host } from "../engine/host.js";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { Atomic, bitfield_load, READ_ONCE, set_bit } from "../kernel/atomic.js";
import { lockdep_assert_held } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import { fast_page_fault } from "./fast_page_fault.js";
import { hostStateIfAny } from "./host_mm.js";
import { defaultHostPfn, pagesPerHpage } from "./kvm.js";
import { nx_huge_page_disallowed, track_possible_nx_huge_page } from "./nx_huge_page_list.js";
import { mmu_try_to_unsync_pages } from "./page_track.js";
import { ROLE } from "./role.js";
import {
  is_frozen_spte,
  is_large_pte,
  is_last_spte,
  is_shadow_present_pte,
  is_writable_pte,
  make_leaf_spte,
} from "./spte.js";
import {
  for_each_tdp_pte,
  KVM_MAX_HUGEPAGE_LEVEL,
  PG_LEVEL_4K,
  spte_to_child_pt,
  TdpIter,
} from "./tdp_iter.js";
import {
  tdp_mmu_free_sp,
  tdp_mmu_init_child_sp,
  tdp_mmu_link_sp,
  tdp_mmu_set_spte_atomic,
  tdp_mmu_split_huge_page,
} from "./tdp_mmu_spte.js";
import { kvm_flush_remote_tlbs_gfn } from "./tlb.js";
import type { Kvm, KvmMmuPage, Memslot, Vcpu } from "./types.js";

/** enum RET_PF_* (mmu_internal.h). */
export type RetPf =
  | "RET_PF_CONTINUE"
  | "RET_PF_RETRY"
  | "RET_PF_EMULATE"
  | "RET_PF_FIXED"
  | "RET_PF_SPURIOUS"
  | "RET_PF_INVALID"
  /** kvm_handle_error_pfn() giving up: -EFAULT to user space (e.g. a write to memory the host made read-only). */
  | "-EFAULT";

/** KVM_MEM_LOG_DIRTY_PAGES: dirty logging forces 4K mappings. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
/** INVALID_GPA as mmu_invalidate_range_start/end hold it while no range is set. */
export const INVALID_GPA = -1;

/** struct kvm_page_fault (mmu_internal.h), the fields the TDP MMU uses. */
export interface KvmPageFault {
  readonly gfn: number;
  readonly write: boolean;
  /** An instruction fetch (with the NX huge page mitigation on, it may not map huge). */
  readonly exec: boolean;
  readonly prefetch: boolean;
  /** The memslot holding gfn, or null (an MMIO access). */
  readonly slot: Memslot | null;
  /** Largest level the fault may map at. */
  readonly max_level: number;
  /** Largest level the slot and the host mapping allow (kvm_mmu_max_mapping_level). */
  req_level: number;
  /** Level the leaf SPTE is installed at. */
  goal_level: number;
  /** Host pfn, aligned down to goal_level by kvm_mmu_hugepage_adjust(). */
  pfn: number;
  readonly map_writable: boolean;
  /** kvm->mmu_invalidate_seq snapshotted before the pfn was looked up. */
  mmu_seq: number;
  /** exec && the NX huge page mitigation is on: the fault maps 4K even where req_level is huge. */
  readonly huge_page_disallowed: boolean;
  /** is_nx_huge_page_enabled(): the VM has the mitigation (Kvm.nx). */
  readonly nx_huge_page_workaround_enabled: boolean;
}

/**
 * Slots sorted by base, per memslot array, rebuilt when the array's length changes: the kernel
 * finds a slot in an rbtree (5.17+, search_memslots()), and a linear scan of 32768 slots per fault
 * would make the simulator, not the model, slow. Unpriced like the scan it stands for.
 */
const slotIndex = new WeakMap<Memslot[], { readonly length: number; readonly sorted: readonly Memslot[] }>();
const INDEXED_SLOTS = 64;

/** Forget the index of kvm's memslot array (called when a change is published). */
export function memslots_changed(kvm: Kvm): void {
  slotIndex.delete(kvm.memslots);
}

function indexedMemslot(kvm: Kvm, as_id: number, gfn: number): Memslot | null {
  let idx = slotIndex.get(kvm.memslots);
  if (idx === undefined || idx.length !== kvm.memslots.length) {
    idx = { length: kvm.memslots.length, sorted: [...kvm.memslots].sort((a, b) => a.base_gfn - b.base_gfn) };
    slotIndex.set(kvm.memslots, idx);
  }
  let lo = 0;
  let hi = idx.sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = idx.sorted[mid];
    if (gfn < s.base_gfn) hi = mid - 1;
    else if (gfn >= s.base_gfn + s.npages) lo = mid + 1;
    else return !s.deleted && s.as_id === as_id ? s : null;
  }
  return null;
}

/** __gfn_to_memslot(): the live slot of address space `as_id` holding gfn (memslots are SRCU-read). */
export function gfn_to_memslot(kvm: Kvm, as_id: number, gfn: number): Memslot | null {
  if (kvm.memslots.length > INDEXED_SLOTS) {
    // A hit is the one live slot holding gfn; a miss (stale index, deleted or other-space slot)
    // falls back to the scan, so the answer is always the scan's.
    const hit = indexedMemslot(kvm, as_id, gfn);
    if (hit !== null && kvm.memslots.includes(hit)) return hit;
  }
  for (const s of kvm.memslots) {
    if (!s.deleted && s.as_id === as_id && gfn >= s.base_gfn && gfn < s.base_gfn + s.npages) return s;
  }
  return null;
}

/** The pfn the primary MMU maps behind gfn. */
export function host_pfn(kvm: Kvm, gfn: number): number {
  return kvm.hostPfn.get(gfn) ?? defaultHostPfn(gfn);
}

/**
 * How the primary MMU backs guest ranges a scenario declared (everything else: resident, and mapped
 * huge wherever the frames are contiguous and aligned). Read without accesses: it prices
 * kvm_faultin_pfn() and caps host_pfn_mapping_level(), and is changed only at setup and by the
 * host's own first-touch faults.
 */
interface HostRange {
  readonly start: number;
  readonly end: number;
  /** The host has the pages already (a prefaulted memfd); else each page is allocated on first touch. */
  readonly resident: boolean;
  /** The host maps them with huge pages where it can (THP, hugetlb); else 4K only (MADV_NOHUGEPAGE). */
  readonly hugepages: boolean;
  /**
   * The largest level the host maps them at: PG_LEVEL_2M for 2M hugetlbfs or THP, PG_LEVEL_1G for
   * 1G hugetlbfs; absent, KVM_MAX_HUGEPAGE_LEVEL.
   */
  readonly maxLevel?: number;
}

const hostMemory = new WeakMap<
  Kvm,
  { ranges: HostRange[]; touched: Set<number>; readonly: [number, number][] }
>();

/** Declare how the host backs [start, end) (setup time; later declarations take precedence). */
export function host_memory_backing(
  kvm: Kvm,
  start: number,
  end: number,
  how: { readonly resident: boolean; readonly hugepages: boolean; readonly maxLevel?: number },
): void {
  hostMemoryOf(kvm).ranges.unshift({ start, end, ...how });
}

function hostMemoryOf(kvm: Kvm): { ranges: HostRange[]; touched: Set<number>; readonly: [number, number][] } {
  let h = hostMemory.get(kvm);
  if (h === undefined) {
    h = { ranges: [], touched: new Set(), readonly: [] };
    hostMemory.set(kvm, h);
  }
  return h;
}

/**
 * The host's mprotect() of [start, end): read-only or writable again. Call it between the
 * invalidate_range_start and _end that the host's change_protection() sends.
 */
export function host_mprotect(kvm: Kvm, start: number, end: number, writable: boolean): void {
  const h = hostMemoryOf(kvm);
  // Remove [start, end) from the read-only ranges, then add it back if it becomes read-only.
  const next: [number, number][] = [];
  for (const [s, e] of h.readonly) {
    if (s < start) next.push([s, Math.min(e, start)]);
    if (e > end) next.push([Math.max(s, end), e]);
  }
  if (!writable) next.push([start, end]);
  h.readonly = next;
}

/** Whether the host maps gfn's page writable (hva_to_pfn()'s `writable`). */
function host_writable(kvm: Kvm, gfn: number): boolean {
  const ro = hostMemory.get(kvm)?.readonly;
  return ro === undefined || !ro.some(([s, e]) => gfn >= s && gfn < e);
}

function host_range(kvm: Kvm, gfn: number): HostRange | undefined {
  return hostMemory.get(kvm)?.ranges.find((r) => gfn >= r.start && gfn < r.end);
}

/** Values of the drawn part of a first-touch host page fault (0..4 units of hostPageFaultSpreadNs). */
const HOST_FAULT_SPREAD = 5;

/**
 * GUP on gfn's host page: how many 4K pages the primary MMU had to fault in for it (0: it had the
 * page already). A host huge page of a declared size (maxLevel: hugetlbfs) is faulted in whole on
 * its first touch, so that is every 4K page of it; other memory is faulted 4K at a time.
 */
function host_fault_in(kvm: Kvm, gfn: number): number {
  const r = host_range(kvm, gfn);
  if (r === undefined || r.resident) return 0;
  const touched = hostMemory.get(kvm)!.touched;
  const n = r.hugepages && r.maxLevel !== undefined ? pagesPerHpage(kvm.geometry, r.maxLevel) : 1;
  const base = gfn - (gfn % n);
  if (touched.has(base)) return 0;
  touched.add(base);
  return n;
}

/**
 * kvm_mmu_max_mapping_level() (mmu.c, v6.x): the largest level <= max_level at
 * which the huge page around gfn lies wholly inside the slot and the host maps
 * it contiguously and aligned (host_pfn_mapping_level), so one SPTE can map it.
 */
export function kvm_mmu_max_mapping_level(kvm: Kvm, slot: Memslot, gfn: number, max_level: number): number {
  // host_pfn_mapping_level(): a host that maps this memory with 4K pages only allows 4K.
  const range = host_range(kvm, gfn);
  if (range?.hugepages === false) return PG_LEVEL_4K;
  const hostLevel = range?.maxLevel ?? KVM_MAX_HUGEPAGE_LEVEL;
  for (let level = Math.min(max_level, KVM_MAX_HUGEPAGE_LEVEL, hostLevel); level > PG_LEVEL_4K; level--) {
    const n = pagesPerHpage(kvm.geometry, level);
    const base = gfn - (gfn % n);
    if (base < slot.base_gfn || base + n > slot.base_gfn + slot.npages) continue;
    const pfn = host_pfn(kvm, base);
    if (pfn % n !== 0) continue;
    let contiguous = true;
    for (const [g, p] of kvm.hostPfn) {
      if (g >= base && g < base + n && p !== pfn + (g - base)) contiguous = false;
    }
    if (contiguous) return level;
  }
  return PG_LEVEL_4K;
}

/**
 * kvm_mmu_hugepage_adjust() (mmu.c, v6.x): choose the goal level and align the
 * pfn down to it. Dirty logging keeps everything at 4K.
 */
export function kvm_mmu_hugepage_adjust(kvm: Kvm, fault: KvmPageFault): void {
  if (fault.max_level === PG_LEVEL_4K || fault.slot === null) return;
  if ((fault.slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) return;
  fault.req_level = kvm_mmu_max_mapping_level(kvm, fault.slot, fault.gfn, fault.max_level);
  if (fault.req_level === PG_LEVEL_4K || fault.huge_page_disallowed) return;
  fault.goal_level = fault.req_level;
  const n = pagesPerHpage(kvm.geometry, fault.goal_level);
  fault.pfn -= fault.pfn % n;
}

/**
 * disallowed_hugepage_adjust() (mmu.c, v5.10+): on the way down, a table at the goal level that
 * exists only because an executable fault could not map huge (nx_huge_page_disallowed) stays: this
 * fault maps one level lower inside it instead of replacing it by a huge leaf, which would undo
 * the mitigation for the fetches that split it. The flag is read without a lock, as in the kernel:
 * a stale value only changes the level of a mapping whose cmpxchg then fails on the changed SPTE.
 */
export function* disallowed_hugepage_adjust(
  kvm: Kvm,
  fault: KvmPageFault,
  spte: number,
  cur_level: number,
): Gen<void> {
  if (cur_level <= PG_LEVEL_4K || cur_level !== fault.goal_level) return;
  if (!is_shadow_present_pte(spte) || is_large_pte(spte)) return;
  const child = spte_to_child_pt(kvm, spte, cur_level);
  if (child === null || !(yield* nx_huge_page_disallowed(child))) return;
  // The pfn gets back the low bits of the gfn that the huge alignment dropped.
  const n = pagesPerHpage(kvm.geometry, cur_level);
  const m = pagesPerHpage(kvm.geometry, cur_level - 1);
  fault.pfn += (fault.gfn % n) - ((fault.gfn % n) % m);
  fault.goal_level--;
}

/**
 * memslot->dirty_bitmap (kvm_host.h): one bit per page of the slot, allocated when dirty logging is
 * enabled. The kernel's words are 64-bit longs; the model's are 32-bit (an Atomic holds a JS number,
 * exact to 53 bits), so harvesting takes twice the word operations.
 */
export const DIRTY_BITMAP_WORD_BITS = 32;
const dirtyBitmaps = new WeakMap<Memslot, Atomic[]>();

/** The slot's dirty bitmap, or undefined when dirty logging never allocated one. */
export function slot_dirty_bitmap(slot: Memslot): Atomic[] | undefined {
  return dirtyBitmaps.get(slot);
}

/**
 * kvm_alloc_dirty_bitmap() (kvm_main.c), and the bitmap_set() kvm_prepare_memory_region() does with
 * KVM_DIRTY_LOG_INITIALLY_SET: a new bitmap, not yet reachable by anyone (no access).
 */
export function kvm_alloc_dirty_bitmap(kvm: Kvm, slot: Memslot, initially_set: boolean): Atomic[] {
  const words: Atomic[] = [];
  for (let w = 0; w * DIRTY_BITMAP_WORD_BITS < slot.npages; w++) {
    const bits = Math.min(DIRTY_BITMAP_WORD_BITS, slot.npages - w * DIRTY_BITMAP_WORD_BITS);
    const full = bits === 32 ? 0xffffffff : 2 ** bits - 1;
    words.push(new Atomic(`memslot${slot.id}.dirty_bitmap[${w}]`, initially_set ? full : 0, kvm.kobj));
  }
  dirtyBitmaps.set(slot, words);
  return words;
}

/** kvm_destroy_dirty_bitmap() (kvm_main.c): the slot no longer logs. */
export function kvm_destroy_dirty_bitmap(slot: Memslot): void {
  dirtyBitmaps.delete(slot);
}

/** mark_page_dirty_in_slot() (kvm_main.c, without a dirty ring): set the page's bit (set_bit_le). */
export function* mark_page_dirty_in_slot(slot: Memslot, gfn: number): Gen<void> {
  const bitmap = dirtyBitmaps.get(slot);
  if (bitmap === undefined) return;
  const rel = gfn - slot.base_gfn;
  yield* set_bit(rel % DIRTY_BITMAP_WORD_BITS, bitmap[Math.floor(rel / DIRTY_BITMAP_WORD_BITS)]);
}

/**
 * tdp_mmu_map_handle_target_level() (tdp_mmu.c, v6.x): install the leaf at the
 * goal level with one cmpxchg. Losing the race means the vCPU retries; replacing
 * a page table with a huge leaf flushes the range it covered.
 */
export const tdp_mmu_map_handle_target_level = modelFn(
  "tdp_mmu_map_handle_target_level",
  function* (vcpu: Vcpu, fault: KvmPageFault, iter: TdpIter): Gen<RetPf> {
    const kvm = vcpu.kvm;
    const sp = iter.sp;
    if (WARN_ON_ONCE(sp.level !== fault.goal_level, "sp->role.level != fault->goal_level"))
      return "RET_PF_RETRY";

    // make_spte(): accessed unless prefetched; writable if the host mapping is, unless the page is
    // write-tracked (then every guest write must exit, and a write fault is emulated).
    let writable = fault.map_writable;
    let wrprot = false;
    if (
      writable &&
      !is_writable_pte(iter.old_spte) &&
      (yield* mmu_try_to_unsync_pages(fault.slot, fault.gfn)) !== 0
    ) {
      writable = false;
      wrprot = true;
    }
    const new_spte = make_leaf_spte({
      pfn: fault.pfn,
      level: iter.level,
      writable,
      accessed: !fault.prefetch,
    });
    const done: RetPf = wrprot && fault.write ? "RET_PF_EMULATE" : "RET_PF_FIXED";
    if (new_spte === iter.old_spte) return done === "RET_PF_FIXED" ? "RET_PF_SPURIOUS" : done;
    // make_spte(): a writable SPTE in a dirty-logged slot logs the page before it is installed.
    const slot = fault.slot;
    if (slot !== null && (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0 && is_writable_pte(new_spte)) {
      yield* mark_page_dirty_in_slot(slot, fault.gfn);
    }
    if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, new_spte)) !== 0) return "RET_PF_RETRY";
    if (is_shadow_present_pte(iter.old_spte) && !is_last_spte(iter.old_spte, iter.level)) {
      yield* kvm_flush_remote_tlbs_gfn(kvm, iter.gfn, iter.level);
    }
    return done;
  },
);

/**
 * kvm_tdp_mmu_map() (tdp_mmu.c, v6.x): walk the vCPU's root towards the gfn
 * under RCU, linking new page tables (or splitting huge pages) on the way down,
 * and install the leaf at the goal level. Every change is a cmpxchg under the
 * read mmu_lock; a frozen SPTE or a lost race means RET_PF_RETRY, and a page
 * table that lost the race was never visible, so it is freed at once.
 */
export const kvm_tdp_mmu_map = modelFn(
  "kvm_tdp_mmu_map",
  function* (vcpu: Vcpu, fault: KvmPageFault): Gen<RetPf> {
    const kvm = vcpu.kvm;
    const root = vcpu.root as KvmMmuPage;
    const iter = new TdpIter(kvm);
    let ret: RetPf = "RET_PF_RETRY";
    const st: { outcome: "walked" | "retry" | "target" } = { outcome: "walked" };

    yield* rcu_read_lock();
    yield* for_each_tdp_pte(iter, root, fault.gfn, fault.gfn + 1, function* () {
      if (fault.nx_huge_page_workaround_enabled)
        yield* disallowed_hugepage_adjust(kvm, fault, iter.old_spte, iter.level);
      // Someone is tearing this SPTE down: retry instead of allocating a table for nothing.
      if (is_frozen_spte(iter.old_spte)) {
        st.outcome = "retry";
        return "break";
      }
      if (iter.level === fault.goal_level) {
        st.outcome = "target";
        return "break";
      }
      if (is_shadow_present_pte(iter.old_spte) && !is_large_pte(iter.old_spte)) return undefined;

      // Non-present, or a huge page that has to be split to go further down.
      const sp = tdp_mmu_init_child_sp(kvm, iter);
      sp.nx_huge_page_disallowed = fault.huge_page_disallowed;
      const r = is_shadow_present_pte(iter.old_spte)
        ? yield* tdp_mmu_split_huge_page(kvm, iter, sp, true)
        : yield* tdp_mmu_link_sp(kvm, iter, sp, true);
      if (r !== 0) {
        yield* tdp_mmu_free_sp(sp, kvm);
        st.outcome = "retry";
        return "break";
      }
      // The table stands where a huge page could have been, had the fault not been a fetch: list
      // it for the recovery worker, unless a zap already unlinked it (and cleared the flag, under
      // the same lock) since the link.
      if (fault.huge_page_disallowed && fault.req_level >= iter.level) {
        yield* spin_lock(kvm.tdp_mmu_pages_lock);
        if (sp.nx_huge_page_disallowed) yield* track_possible_nx_huge_page(kvm, sp);
        yield* spin_unlock(kvm.tdp_mmu_pages_lock);
      }
      return undefined;
    });

    if (st.outcome === "target") ret = yield* tdp_mmu_map_handle_target_level(vcpu, fault, iter);
    // The walk ran out without reaching the goal level: an upper SPTE was frozen mid-walk.
    else if (st.outcome === "walked")
      WARN_ON_ONCE(iter.level === fault.goal_level, "iter.level == goal_level");
    yield* rcu_read_unlock();
    return ret;
  },
);

/**
 * mmu_invalidate_retry_gfn() (include/linux/kvm_host.h, v6.3+): with mmu_lock
 * held, did an mmu_notifier invalidation cover gfn, or complete, since mmu_seq
 * was snapshotted? Then the pfn may be stale and the fault must retry.
 */
export const mmu_invalidate_retry_gfn = modelFn(
  "mmu_invalidate_retry_gfn",
  function* (kvm: Kvm, mmu_seq: number, gfn: number): Gen<boolean> {
    lockdep_assert_held(kvm.mmu_lock);
    if ((yield* READ_ONCE(kvm.mmu_invalidate_in_progress)) !== 0) {
      const start = yield* READ_ONCE(kvm.mmu_invalidate_range_start);
      const end = yield* READ_ONCE(kvm.mmu_invalidate_range_end);
      // Dropping mmu_lock with an invalidation in progress but no range set is a KVM bug.
      if (WARN_ON_ONCE(start === INVALID_GPA || end === INVALID_GPA, "invalidation range unset")) return true;
      if (gfn >= start && gfn < end) return true;
    }
    return (yield* READ_ONCE(kvm.mmu_invalidate_seq)) !== mmu_seq;
  },
);

/**
 * is_page_fault_stale() (mmu.c, a955cad84cda 5.16+): rechecked under mmu_lock.
 * A fault on a root that was invalidated meanwhile would install SPTEs nobody
 * will zap (features.faultChecksInvalidRoot); a notifier race means a stale pfn.
 */
export const is_page_fault_stale = modelFn(
  "is_page_fault_stale",
  function* (vcpu: Vcpu, fault: KvmPageFault): Gen<boolean> {
    const kvm = vcpu.kvm;
    const sp = vcpu.root;
    // is_obsolete_sp(): for TDP MMU pages, role.invalid (which E3's last put sets under the read lock).
    if (
      kvm.features.faultChecksInvalidRoot &&
      sp !== null &&
      (yield* bitfield_load(sp.role, ROLE.invalid)) === 1
    ) {
      return true;
    }
    return fault.slot !== null && (yield* mmu_invalidate_retry_gfn(kvm, fault.mmu_seq, fault.gfn));
  },
);

export interface FaultOptions {
  /** Largest mapping level allowed (default KVM_MAX_HUGEPAGE_LEVEL). */
  readonly maxLevel?: number;
  readonly prefetch?: boolean;
  /**
   * The EPT violation hit a present SPTE (a write-protection fault): fast_page_fault() may fix it
   * without mmu_lock first. Only vCPUs on the modelled CPU know (ept_access); plain faults do not.
   */
  readonly present?: boolean;
  /** An instruction fetch: with the NX huge page mitigation on, it maps 4K only. */
  readonly exec?: boolean;
}

/**
 * kvm_tdp_mmu_page_fault() (mmu.c, v6.x), after kvm_mmu_do_page_fault() checked
 * that a root is loaded: snapshot mmu_invalidate_seq, look up the pfn
 * (kvm_faultin_pfn), take mmu_lock for read, give up if the fault went stale,
 * map, unlock. A write-protection fault (opts.present) tries fast_page_fault() first. RET_PF_RETRY
 * means the vCPU re-enters the guest and faults again; the caller bounds that.
 */
export const kvm_tdp_mmu_page_fault = modelFn(
  "kvm_tdp_mmu_page_fault",
  function* (vcpu: Vcpu, gfn: number, write: boolean, opts: FaultOptions = {}): Gen<RetPf> {
    const kvm = vcpu.kvm;
    kvm.stats.faults++;
    if (WARN_ON_ONCE(vcpu.root === null, "!VALID_PAGE(vcpu->arch.mmu->root.hpa)")) return "RET_PF_RETRY";

    // kvm_vcpu_gfn_to_memslot(): the memslot array, read under SRCU. Where a task of the run can
    // replace it, the lookup is ordered against that update.
    const hs = hostStateIfAny(kvm);
    if (hs !== undefined) yield* READ_ONCE(hs.memslots);
    const slot = gfn_to_memslot(kvm, vcpu.smm !== 0 ? 1 : 0, gfn);
    if (slot === null) return "RET_PF_EMULATE";
    if (opts.present) {
      const fast = yield* fast_page_fault(vcpu, { gfn, write, present: true, slot, slotFlags: slot.flags });
      if (fast !== "RET_PF_INVALID") return fast;
    }

    // kvm_faultin_pfn(): the snapshot comes first, so a pfn from a mapping that an invalidation
    // is about to change is caught by the recheck under mmu_lock.
    const mmu_seq = yield* READ_ONCE(kvm.mmu_invalidate_seq);
    // hva_to_pfn(), outside mmu_lock: a GUP, plus the host's own page fault on first touch. That one
    // takes 20-24 µs (published-figures E6), a range: the part above the minimum is a data choice, which
    // the simulator draws from its seeded generator.
    host().cost("faultin_pfn", 1);
    const faulted = host_fault_in(kvm, gfn);
    if (faulted > 0) {
      const spread = yield {
        kind: "choose",
        n: HOST_FAULT_SPREAD,
        fn: "kvm_faultin_pfn",
        step: "host page fault time",
      };
      host().cost("host_page_fault", 1);
      host().cost("host_page_fault_spread", spread as number);
      // clear_huge_page() of the rest of a huge host page.
      if (faulted > 1) host().cost("host_page_clear", faulted - 1);
    }
    // A write to memory the host maps read-only: GUP fails (KVM_PFN_ERR_FAULT), and
    // kvm_handle_error_pfn() returns -EFAULT to user space.
    const host_w = host_writable(kvm, gfn);
    if (write && !host_w) return "-EFAULT";
    const fault: KvmPageFault = {
      gfn,
      write,
      prefetch: opts.prefetch ?? false,
      slot,
      max_level: opts.maxLevel ?? KVM_MAX_HUGEPAGE_LEVEL,
      req_level: PG_LEVEL_4K,
      goal_level: PG_LEVEL_4K,
      pfn: host_pfn(kvm, gfn),
      map_writable: host_w,
      mmu_seq,
      exec: opts.exec ?? false,
      huge_page_disallowed: (opts.exec ?? false) && kvm.nx !== null,
      nx_huge_page_workaround_enabled: kvm.nx !== null,
    };
    kvm_mmu_hugepage_adjust(kvm, fault);

    let r: RetPf = "RET_PF_RETRY";
    yield* read_lock(kvm.mmu_lock);
    if (!(yield* is_page_fault_stale(vcpu, fault))) r = yield* kvm_tdp_mmu_map(vcpu, fault);
    yield* read_unlock(kvm.mmu_lock);
    if (r === "RET_PF_RETRY") kvm.stats.faultRetries++;
    return r;
  },
);
