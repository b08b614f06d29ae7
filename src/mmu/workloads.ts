import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import {
  type Atomic,
  andMask,
  atomic_fetch_andnot,
  READ_ONCE,
  try_cmpxchg,
  WRITE_ONCE,
  withBit,
  xchg,
} from "../kernel/atomic.js";
import { bootMachine, ktask, type MachineConfig } from "../kernel/machine.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { ept_access } from "./ept_access.js";
import type { Features } from "./features.js";
import { hostState } from "./host_mm.js";
import { register_page_table_checks } from "./invariants/pages.js";
import { check_invalid_roots_freed, check_slot_unmapped, registerInvariants } from "./invariants/roots.js";
import { defaultHostPfn, kvm_create_vm, kvm_vcpu_create, pagesPerHpage, reuse_root_frames } from "./kvm.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import {
  kvm_mmu_notifier_clear_young,
  kvm_mmu_notifier_invalidate_range_end,
  kvm_mmu_notifier_invalidate_range_start,
  kvm_mmu_notifier_test_young,
} from "./mmu_notifier.js";
import { kvm_mmu_slot_gfn_write_protect } from "./page_track.js";
import { is_shadow_present_pte, is_writable_pte, SPTE_BIT } from "./spte.js";
import { KVM_MAX_HUGEPAGE_LEVEL, PG_LEVEL_2M, PG_LEVEL_4K } from "./tdp_iter.js";
import { kvm_mmu_init_tdp_mmu, kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import {
  DIRTY_BITMAP_WORD_BITS,
  KVM_MEM_LOG_DIRTY_PAGES,
  kvm_alloc_dirty_bitmap,
  kvm_destroy_dirty_bitmap,
  kvm_tdp_mmu_page_fault,
  memslots_changed,
  slot_dirty_bitmap,
} from "./tdp_mmu_map.js";
import { kvm_mmu_recover_huge_pages } from "./tdp_mmu_recover.js";
import { kvm_mmu_slot_try_split_huge_pages, kvm_mmu_try_split_huge_pages } from "./tdp_mmu_split.js";
import {
  kvm_tdp_mmu_clear_dirty_pt_masked,
  kvm_tdp_mmu_clear_dirty_slot,
  kvm_tdp_mmu_wrprot_slot,
} from "./tdp_mmu_walks.js";
import { peekLeafSptep } from "./testing.js";
import { kvm_flush_remote_tlbs, kvm_flush_remote_tlbs_range } from "./tlb.js";
import type { Kvm, Memslot, Vcpu } from "./types.js";
import { IN_GUEST_MODE, kvm_mmu_unload, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "./vcpu.js";

/**
 * The tasks scenarios compose: each is a generator that plays one user of the
 * VM (a vCPU thread, an ioctl, the primary MMU's notifier, the VM's last
 * close). Every task holds a reference on struct kvm for its whole life, taken
 * when it is spawned (as the file descriptor it works through was opened
 * before), and drops it when done; the last put destroys the VM.
 */

/** One guest access that faults. */
export interface FaultSpec {
  readonly gfn: number;
  readonly write?: boolean;
  /**
   * An instruction fetch: with the NX huge page mitigation (Kvm.nx) it maps 4K only. The modelled
   * CPU's EPT walk does not check the execute permission, so on it only the first fetch faults.
   */
  readonly exec?: boolean;
}

export interface VcpuTaskOptions {
  readonly faults: readonly FaultSpec[];
  /** Times the vCPU runs its faults (default 1). */
  readonly iterations?: number;
  /**
   * Bound on the re-entries of one access (a pending request or RET_PF_RETRY each cost one); the
   * real guest would retry forever, the model moves on so every run is finite (default 2).
   */
  readonly maxRetries?: number;
  /** Drop the vCPU's roots when the thread is done (default true); else VM teardown does it. */
  readonly unload?: boolean;
  /**
   * The guest's accesses go through the CPU (ept_access): a walk that sets Accessed/Dirty, a TLB
   * that caches what it walked, and an EPT violation only when the SPTEs do not grant the access.
   * Off (default): every access faults, and no TLB or A/D bit is modelled.
   */
  readonly hardware?: boolean;
}

/**
 * One guest access through the CPU (VcpuTaskOptions.hardware): enter the guest if not in it, let
 * the CPU try; on an EPT violation exit and handle the fault, on a kick exit (requests are serviced
 * on the next entry); then try again, at most 1 + maxRetries re-entries. Returns whether the vCPU
 * is still in the guest.
 */
export function* guestAccess(vcpu: Vcpu, f: FaultSpec, inGuest: boolean, maxRetries: number): Gen<boolean> {
  const write = f.write ?? false;
  for (let attempt = 0; attempt <= maxRetries + 1; attempt++) {
    if (!inGuest) {
      if (!(yield* vcpu_enter_guest(vcpu))) continue;
      inGuest = true;
    }
    const r = yield* ept_access(vcpu, f.gfn, write);
    if (r === "ok") return true;
    yield* vcpu_exit_guest(vcpu);
    inGuest = false;
    if (r === "ept-violation" || r === "ept-write-protect")
      yield* kvm_tdp_mmu_page_fault(vcpu, f.gfn, write, { present: r === "ept-write-protect", exec: f.exec });
  }
  return inGuest;
}

/**
 * A vCPU thread: for each access, enter the guest (servicing requests, loading a root if it has
 * none, backing out if a request arrives while entering), exit on the EPT violation and handle it
 * with kvm_tdp_mmu_page_fault(); re-enter on RET_PF_RETRY. With no faults it just enters and exits
 * `iterations` times. At the end it unloads its roots and drops its VM reference.
 */
export function* vcpuTask(vcpu: Vcpu, opts: VcpuTaskOptions): Gen<void> {
  const kvm = vcpu.kvm;
  kvm_get_kvm_at_spawn(kvm);
  vcpu_mode(vcpu);
  // Translations are tagged by root frame: a new root may get a freed one's.
  if (opts.hardware) reuse_root_frames(kvm);
  const iterations = opts.iterations ?? 1;
  const maxRetries = opts.maxRetries ?? 2;
  for (let it = 0; it < iterations; it++) {
    if (opts.faults.length === 0) {
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        if (!(yield* vcpu_enter_guest(vcpu))) continue;
        yield* vcpu_exit_guest(vcpu);
        break;
      }
    }
    if (opts.hardware) {
      let inGuest = false;
      for (const f of opts.faults) inGuest = yield* guestAccess(vcpu, f, inGuest, maxRetries);
      if (inGuest) yield* vcpu_exit_guest(vcpu);
      continue;
    }
    for (const f of opts.faults) {
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        // A request that arrived while entering is serviced on the next entry.
        if (!(yield* vcpu_enter_guest(vcpu))) continue;
        // The guest touches the page; the EPT violation exits to the host.
        yield* vcpu_exit_guest(vcpu);
        const r = yield* kvm_tdp_mmu_page_fault(vcpu, f.gfn, f.write ?? false, { exec: f.exec });
        if (r !== "RET_PF_RETRY") break;
      }
    }
  }
  if (opts.unload ?? true) yield* kvm_mmu_unload(vcpu);
  yield* kvm_put_kvm(kvm);
}

export interface VcpuGuestOptions {
  /**
   * The pages the guest touches whenever it starts on a root it has not faulted in yet (after a kick
   * made it reload): each access faults once.
   */
  readonly workingSet: readonly FaultSpec[];
  /** Fault the working set on the first entry too (default false: the scenario mapped it in setup). */
  readonly faultAtStart?: boolean;
  /** A word the scenario sets (non-zero) when the guest should stop for good. */
  readonly stop: Atomic;
  /** Re-entries of one access that returned RET_PF_RETRY before the guest moves on (default 2). */
  readonly maxRetries?: number;
}

/**
 * vcpuGuestTask: a vCPU whose guest keeps running (KVM_RUN never returns to user space) until
 * kvm_make_all_cpus_request() kicks it, i.e. until its root was invalidated; it then exits, services
 * the request on the next entry (which frees the obsolete root and loads a new, empty one), and the
 * guest faults its working set into the new root. It leaves the guest for good once `stop` is set.
 * The time in guest mode is a sleeping wait: the model has no guest instructions to price.
 */
export function* vcpuGuestTask(vcpu: Vcpu, opts: VcpuGuestOptions): Gen<void> {
  const kvm = vcpu.kvm;
  kvm_get_kvm_at_spawn(kvm);
  const mode = vcpu_mode(vcpu);
  const stop = opts.stop;
  const maxRetries = opts.maxRetries ?? 2;
  let todo: FaultSpec[] = opts.faultAtStart ? [...opts.workingSet] : [];
  let retries = 0;
  for (;;) {
    // A request that arrived while entering is serviced on the next entry.
    if (!(yield* vcpu_enter_guest(vcpu))) continue;
    const f = todo[0];
    if (f !== undefined) {
      yield* vcpu_exit_guest(vcpu);
      const r = yield* kvm_tdp_mmu_page_fault(vcpu, f.gfn, f.write ?? false);
      if (r !== "RET_PF_RETRY" || ++retries > maxRetries) {
        todo.shift();
        retries = 0;
      }
      continue;
    }
    // In the guest until a kick (IN_GUEST_MODE -> EXITING_GUEST_MODE) or the end of the scenario.
    yield {
      kind: "wait",
      obj: mode.id,
      objs: [stop.id, ...(mode.deps ?? [])],
      fn: currentFn(),
      step: "guest runs until kicked",
      enabled: () => mode.v !== IN_GUEST_MODE || stop.v !== 0,
    };
    const kicked = mode.v !== IN_GUEST_MODE;
    const done = stop.v !== 0;
    yield* vcpu_exit_guest(vcpu);
    if (done) break;
    if (kicked) todo = [...opts.workingSet];
  }
  yield* kvm_put_kvm(kvm);
}

export interface VcpuPopulateOptions {
  /** First gfn the guest touches; it goes up one page at a time. */
  readonly start: number;
  /** Exclusive end of the pages it may touch. */
  readonly end: number;
  /** A word the scenario sets (non-zero) when the guest should stop. */
  readonly stop: Atomic;
  /** Write accesses (default true: memstress writes 8 bytes of every page). */
  readonly write?: boolean;
  /** Re-entries of one access that returned RET_PF_RETRY before the guest moves on (default 2). */
  readonly maxRetries?: number;
}

/**
 * vcpuPopulateTask: a memstress-style vCPU touching fresh pages one after the other, each access an
 * EPT violation that kvm_tdp_mmu_page_fault() handles, until `stop` is set or the pages run out. The
 * guest checks `stop` between pages, as the selftests' guests check a shared flag between passes.
 */
export function* vcpuPopulateTask(vcpu: Vcpu, opts: VcpuPopulateOptions): Gen<void> {
  const kvm = vcpu.kvm;
  kvm_get_kvm_at_spawn(kvm);
  vcpu_mode(vcpu);
  const maxRetries = opts.maxRetries ?? 2;
  for (let gfn = opts.start; gfn < opts.end && opts.stop.v === 0; gfn++) {
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (!(yield* vcpu_enter_guest(vcpu))) continue;
      yield* vcpu_exit_guest(vcpu);
      if ((yield* kvm_tdp_mmu_page_fault(vcpu, gfn, opts.write ?? true)) !== "RET_PF_RETRY") break;
    }
  }
  yield* kvm_put_kvm(kvm);
}

/**
 * agingPassTask: one pass of reclaim's aging over [start, end): clear_young notifications of `chunk`
 * pages each (one page for page_idle or rmap-based reclaim, a PMD's worth for a page-table walk such
 * as MGLRU's), one after the other. `after` runs when the pass is done (e.g. to stop the guests).
 */
export function* agingPassTask(
  kvm: Kvm,
  start: number,
  end: number,
  chunk: number,
  after?: () => Gen<void>,
): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  for (let s = start; s < end; s += chunk) {
    yield* kvm_mmu_notifier_clear_young(kvm, s, Math.min(end, s + chunk));
  }
  if (after !== undefined) yield* after();
  yield* kvm_put_kvm(kvm);
}

/**
 * Publish a memslot change (kvm_swap_active_memslots(): a new array, generation + 1). Readers
 * (faults, notifiers) take the array under SRCU and read it with plain loads.
 */
export function* kvm_swap_active_memslots(kvm: Kvm, change: () => void): Gen<void> {
  const h = hostState(kvm);
  yield* WRITE_ONCE(h.memslots, h.memslots.v + 1);
  change();
  memslots_changed(kvm);
}

/**
 * KVM_SET_USER_MEMORY_REGION deleting a slot (kvm_set_memslot(), KVM_MR_DELETE): with slots_lock
 * held, make the slot invisible to new faults, then kvm_arch_flush_shadow_memslot() ->
 * kvm_mmu_zap_all_fast(). When it is done no root may map the slot any more (invariant 10, the
 * weak form).
 */
export const kvm_set_memslot_delete = modelFn(
  "kvm_set_memslot",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* mutex_lock(kvm.slots_lock);
    yield* kvm_swap_active_memslots(kvm, () => {
      slot.deleted = true;
    });
    yield* kvm_mmu_zap_all_fast(kvm);
    check_slot_unmapped(kvm, slot.base_gfn, slot.base_gfn + slot.npages);
    yield* mutex_unlock(kvm.slots_lock);
  },
);

/** memslotDeleteTask: an ioctl thread deleting `slot`. */
export function* memslotDeleteTask(kvm: Kvm, slot: Memslot): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  hostState(kvm);
  yield* kvm_set_memslot_delete(kvm, slot);
  yield* kvm_put_kvm(kvm);
}

/** The primary MMU moves the pages behind [start, end) to new frames (a migration). */
export const migrate_pages = modelFn(
  "migrate_pages",
  function* (kvm: Kvm, start: number, end: number): Gen<void> {
    const h = hostState(kvm);
    yield* WRITE_ONCE(h.mm, h.mm.v + 1);
    for (let gfn = start; gfn < end; gfn++) {
      const old = kvm.hostPfn.get(gfn) ?? defaultHostPfn(gfn);
      kvm.hostPfn.set(gfn, old + 0x100000);
      // The old page goes back to the host: KVM's invalidation has returned, nothing may reach it.
      h.released.add(old);
    }
  },
);

/**
 * The range the primary MMU invalidates to change [start, end): the model's host maps a huge page
 * wherever frames are contiguous and aligned, and a host that changes part of a huge mapping
 * splits it first (split_huge_pmd), which invalidates the whole huge range. So the range is
 * widened to KVM_MAX_HUGEPAGE_LEVEL boundaries.
 */
export function host_invalidation_range(kvm: Kvm, start: number, end: number): [number, number] {
  const n = pagesPerHpage(kvm.geometry, KVM_MAX_HUGEPAGE_LEVEL);
  return [start - (start % n), Math.min(kvm.geometry.maxGfn, Math.ceil(end / n) * n)];
}

/**
 * notifierInvalidateTask: invalidate_range_start, the host moves the pages of [start, end) to new
 * frames (a migration), invalidate_range_end; the notified range is widened to whole huge pages.
 */
export function* notifierInvalidateTask(kvm: Kvm, start: number, end: number): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  hostState(kvm);
  const [s, e] = host_invalidation_range(kvm, start, end);
  yield* kvm_mmu_notifier_invalidate_range_start(kvm, s, e);
  yield* migrate_pages(kvm, start, end);
  yield* kvm_mmu_notifier_invalidate_range_end(kvm, s, e);
  yield* kvm_put_kvm(kvm);
}

/** agingTask: reclaim asks whether [start, end) was accessed (test_young) or clears it (clear_young). */
export function* agingTask(kvm: Kvm, start: number, end: number, testOnly: boolean): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  if (testOnly) yield* kvm_mmu_notifier_test_young(kvm, start, end);
  else yield* kvm_mmu_notifier_clear_young(kvm, start, end);
  yield* kvm_put_kvm(kvm);
}

/**
 * kvm_mmu_slot_remove_write_access() (mmu.c) for a TDP MMU: write-protect the slot under the read
 * lock; then flush, as kvm_mmu_slot_apply_flags() does, with slots_lock held.
 */
export const kvm_mmu_slot_remove_write_access = modelFn(
  "kvm_mmu_slot_remove_write_access",
  function* (kvm: Kvm, slot: Memslot, start_level: number): Gen<void> {
    yield* read_lock(kvm.mmu_lock);
    const flush = yield* kvm_tdp_mmu_wrprot_slot(kvm, slot, start_level);
    yield* read_unlock(kvm.mmu_lock);
    if (flush) yield* kvm_flush_remote_tlbs(kvm);
  },
);

/**
 * dirtyLogEnableTask: KVM_SET_USER_MEMORY_REGION setting KVM_MEM_LOG_DIRTY_PAGES on `slot`. With
 * `eagerSplit` (the eager_page_split module parameter) on a kernel that has it
 * (features.eagerPageSplit), kvm_mmu_slot_apply_flags() first splits the slot's huge pages to 4K
 * under the read lock, then write-protects.
 */
export function* dirtyLogEnableTask(kvm: Kvm, slot: Memslot, eagerSplit = false): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  hostState(kvm);
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_swap_active_memslots(kvm, () => {
    slot.flags |= KVM_MEM_LOG_DIRTY_PAGES;
  });
  if (eagerSplit && kvm.features.eagerPageSplit)
    yield* kvm_mmu_slot_try_split_huge_pages(kvm, slot, PG_LEVEL_4K);
  yield* kvm_mmu_slot_remove_write_access(kvm, slot, PG_LEVEL_4K);
  yield* mutex_unlock(kvm.slots_lock);
  yield* kvm_put_kvm(kvm);
}

/**
 * dirtyLogDisableTask: KVM_SET_USER_MEMORY_REGION clearing KVM_MEM_LOG_DIRTY_PAGES on `slot`, with
 * slots_lock held: publish the slot, then kvm_mmu_slot_apply_flags() recovers huge pages (in place
 * from 6.13, by zapping what could be huge before).
 */
export function* dirtyLogDisableTask(kvm: Kvm, slot: Memslot): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  hostState(kvm);
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_swap_active_memslots(kvm, () => {
    slot.flags &= ~KVM_MEM_LOG_DIRTY_PAGES;
  });
  yield* kvm_mmu_recover_huge_pages(kvm, slot);
  yield* mutex_unlock(kvm.slots_lock);
  yield* kvm_put_kvm(kvm);
}

/** kvm_mmu_slot_leaf_clear_dirty() (mmu.c): clear the slot's dirty state under the read lock, then flush. */
export const kvm_mmu_slot_leaf_clear_dirty = modelFn(
  "kvm_mmu_slot_leaf_clear_dirty",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* read_lock(kvm.mmu_lock);
    const flush = yield* kvm_tdp_mmu_clear_dirty_slot(kvm, slot);
    yield* read_unlock(kvm.mmu_lock);
    if (flush) yield* kvm_flush_remote_tlbs(kvm);
  },
);

/** dirtyLogClearTask: harvesting the dirty log of `slot` (slots_lock held). */
export function* dirtyLogClearTask(kvm: Kvm, slot: Memslot): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_mmu_slot_leaf_clear_dirty(kvm, slot);
  yield* mutex_unlock(kvm.slots_lock);
  yield* kvm_put_kvm(kvm);
}

/**
 * kvm_arch_mmu_enable_log_dirty_pt_masked() (x86.c -> mmu.c, v5.18+) for a TDP MMU on a host without
 * PML (AMD, or Intel with PML off), with the write mmu_lock held: re-arm logging for the pages of
 * `mask` by write-protecting them (kvm_mmu_write_protect_pt_masked), so their next write faults and
 * marks them dirty again. With MANUAL_PROTECT + INITIALLY_SET nothing was write-protected when
 * logging was enabled, so a huge page may still map the range: with eager_page_split it is first
 * split to 4K (kvm_mmu_try_split_huge_pages(), the clear-time half of the eager-split series the
 * preset's eagerPageSplit stands for), and the huge SPTEs that still cover the first and last page
 * are write-protected (kvm_mmu_slot_gfn_write_protect() at PG_LEVEL_2M), so the next write takes a
 * fault that maps 4K.
 */
export const kvm_arch_mmu_enable_log_dirty_pt_masked = modelFn(
  "kvm_arch_mmu_enable_log_dirty_pt_masked",
  function* (kvm: Kvm, slot: Memslot, gfn_offset: number, mask: number): Gen<void> {
    const caps = dirtyLogCaps.get(kvm);
    if (caps?.manualProtect && caps.initiallySet) {
      const start = slot.base_gfn + gfn_offset + lowestBit(mask);
      const end = slot.base_gfn + gfn_offset + highestBit(mask);
      if (caps.eagerSplit !== false && kvm.features.eagerPageSplit)
        yield* kvm_mmu_try_split_huge_pages(kvm, slot, start, end + 1, PG_LEVEL_4K);
      yield* kvm_mmu_slot_gfn_write_protect(kvm, slot, start, PG_LEVEL_2M);
      const hpage = pagesPerHpage(kvm.geometry, PG_LEVEL_2M);
      if (Math.floor(start / hpage) !== Math.floor(end / hpage))
        yield* kvm_mmu_slot_gfn_write_protect(kvm, slot, end, PG_LEVEL_2M);
    }
    yield* kvm_tdp_mmu_clear_dirty_pt_masked(kvm, slot, slot.base_gfn + gfn_offset, BigInt(mask), true);
  },
);

/** __ffs() of a non-zero bitmap word. */
function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

/** __fls() of a non-zero bitmap word. */
function highestBit(mask: number): number {
  return 31 - Math.clz32(mask);
}

/**
 * kvm_get_dirty_log_protect() (kvm_main.c), under slots_lock as kvm_vm_ioctl_get_dirty_log() holds
 * it. With KVM_DIRTY_LOG_MANUAL_PROTECT the bitmap is only copied out; otherwise every non-zero word
 * is taken (xchg with 0) and its pages re-protected under the write mmu_lock, with one flush at the
 * end. Returns the copy user space gets.
 */
export const kvm_get_dirty_log_protect = modelFn(
  "kvm_get_dirty_log_protect",
  function* (kvm: Kvm, slot: Memslot, manual_protect: boolean): Gen<number[]> {
    const bitmap = slot_dirty_bitmap(slot);
    if (bitmap === undefined) return [];
    const out: number[] = [];
    if (manual_protect) {
      // copy_to_user() of the bitmap: one load per word.
      for (const w of bitmap) out.push(yield* READ_ONCE(w));
      return out;
    }
    let flush = false;
    yield* write_lock(kvm.mmu_lock);
    for (let i = 0; i < bitmap.length; i++) {
      if ((yield* READ_ONCE(bitmap[i])) === 0) {
        out.push(0);
        continue;
      }
      flush = true;
      const mask = yield* xchg(bitmap[i], 0);
      out.push(mask);
      yield* kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, slot, i * DIRTY_BITMAP_WORD_BITS, mask);
    }
    yield* write_unlock(kvm.mmu_lock);
    if (flush) yield* kvm_flush_remote_tlbs_range(kvm, slot.base_gfn, slot.npages);
    return out;
  },
);

/**
 * kvm_clear_dirty_log_protect() (kvm_main.c), under slots_lock as kvm_vm_ioctl_clear_dirty_log()
 * holds it: for each word of the user's bitmap, clear those bits in the slot's bitmap
 * (atomic_long_fetch_andnot) and re-protect the pages that were still set, all under one write
 * mmu_lock; one flush of the slot at the end if anything was re-protected.
 */
export const kvm_clear_dirty_log_protect = modelFn(
  "kvm_clear_dirty_log_protect",
  function* (kvm: Kvm, slot: Memslot, user: readonly number[]): Gen<void> {
    const bitmap = slot_dirty_bitmap(slot);
    if (bitmap === undefined) return;
    let flush = false;
    yield* write_lock(kvm.mmu_lock);
    for (let i = 0; i < bitmap.length; i++) {
      let mask = user[i] ?? 0;
      if (mask === 0) continue;
      mask = andMask(mask, yield* atomic_fetch_andnot(bitmap[i], mask));
      if (mask !== 0) {
        flush = true;
        yield* kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, slot, i * DIRTY_BITMAP_WORD_BITS, mask);
      }
    }
    yield* write_unlock(kvm.mmu_lock);
    if (flush) yield* kvm_flush_remote_tlbs_range(kvm, slot.base_gfn, slot.npages);
  },
);

export interface DirtyLogCaps {
  /** KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE: GET only copies, CLEAR re-protects. */
  readonly manualProtect: boolean;
  /** KVM_DIRTY_LOG_INITIALLY_SET: the bitmap starts all set and enabling protects nothing. */
  readonly initiallySet: boolean;
  /** The eager_page_split module parameter (default Y): split huge pages before logging needs 4K. */
  readonly eagerSplit?: boolean;
}

/**
 * kvm->manual_dirty_log_protect and the eager_page_split module parameter the VM logs with, as the
 * last kvm_set_memslot_flags() was given them (the selftests set both once, before any logging).
 */
const dirtyLogCaps = new WeakMap<Kvm, DirtyLogCaps>();

/**
 * KVM_SET_USER_MEMORY_REGION changing only KVM_MEM_LOG_DIRTY_PAGES (kvm_set_memslot(),
 * KVM_MR_FLAGS_ONLY) on a host without PML, with slots_lock held: allocate the bitmap (all set with
 * INITIALLY_SET), publish the slot, then kvm_mmu_slot_apply_flags() (x86.c, v6.x). Enabling does
 * nothing more with MANUAL_PROTECT + INITIALLY_SET (the first CLEAR protects, and splits); otherwise
 * it splits the slot's huge pages to 4K under the read lock when eager_page_split is on
 * (kvm_mmu_slot_try_split_huge_pages()), then write-protects the slot. Disabling recovers huge pages
 * (kvm_mmu_recover_huge_pages(): in place from 6.13, by zapping what could be huge before), which
 * walks the slot's upper levels even when the host backs it with 4K pages, and frees the bitmap.
 * The SRCU grace period of the memslot swap is not modelled.
 */
export const kvm_set_memslot_flags = modelFn(
  "kvm_set_memslot",
  function* (kvm: Kvm, slot: Memslot, log_dirty: boolean, caps: DirtyLogCaps): Gen<void> {
    dirtyLogCaps.set(kvm, caps);
    yield* mutex_lock(kvm.slots_lock);
    if (log_dirty) kvm_alloc_dirty_bitmap(kvm, slot, caps.manualProtect && caps.initiallySet);
    yield* kvm_swap_active_memslots(kvm, () => {
      slot.flags = log_dirty ? slot.flags | KVM_MEM_LOG_DIRTY_PAGES : slot.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
    });
    if (log_dirty && !(caps.manualProtect && caps.initiallySet)) {
      if (caps.eagerSplit !== false && kvm.features.eagerPageSplit)
        yield* kvm_mmu_slot_try_split_huge_pages(kvm, slot, PG_LEVEL_4K);
      yield* kvm_mmu_slot_remove_write_access(kvm, slot, PG_LEVEL_4K);
    }
    if (!log_dirty) {
      yield* kvm_mmu_recover_huge_pages(kvm, slot);
      kvm_destroy_dirty_bitmap(slot);
    }
    yield* mutex_unlock(kvm.slots_lock);
  },
);

/** The dirty-log ioctls as user space issues them: each takes slots_lock around the KVM function. */
export function* kvm_vm_ioctl_get_dirty_log(kvm: Kvm, slot: Memslot, manual: boolean): Gen<number[]> {
  yield* mutex_lock(kvm.slots_lock);
  const r = yield* kvm_get_dirty_log_protect(kvm, slot, manual);
  yield* mutex_unlock(kvm.slots_lock);
  return r;
}

export function* kvm_vm_ioctl_clear_dirty_log(kvm: Kvm, slot: Memslot, user: readonly number[]): Gen<void> {
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_clear_dirty_log_protect(kvm, slot, user);
  yield* mutex_unlock(kvm.slots_lock);
}

/**
 * The guest's access to one page, as the CPU makes it: a TLB miss walks the EPT (the upper levels
 * come from the paging-structure caches; the leaf is read) and, if the leaf allows the access, the
 * CPU sets Accessed (and Dirty for a write) itself, with no exit. Returns false when the access
 * takes an EPT violation instead.
 */
export function* guest_access(vcpu: Vcpu, gfn: number, write: boolean): Gen<boolean> {
  host().cost("guest_page_access", 1);
  const root = vcpu.root;
  const sptep = root === null ? null : peekLeafSptep(vcpu.kvm, root, gfn);
  if (sptep === null) return false;
  let old = yield* READ_ONCE(sptep);
  for (;;) {
    if (!is_shadow_present_pte(old) || (write && !is_writable_pte(old))) return false;
    let next = withBit(old, SPTE_BIT.accessed, true);
    if (write) next = withBit(next, SPTE_BIT.dirty, true);
    if (next === old) return true;
    const r = yield* try_cmpxchg(sptep, old, next);
    if (r.ok) return true;
    old = r.old;
  }
}

export interface MemstressVcpuOptions {
  /** The vCPU's pages: [start, start + pages). */
  readonly start: number;
  readonly pages: number;
  /** Write one page in `writeFraction` (memstress -f; 1 = every page), read the others. */
  readonly writeFraction?: number;
  /** The host's iteration number (the selftest's `iteration`). */
  readonly iteration: Atomic;
  /** The last iteration this vCPU completed (vcpu_last_completed_iteration[i]), written at GUEST_SYNC. */
  readonly completed: Atomic;
  /** host_quit. */
  readonly quit: Atomic;
  /** Re-entries of one access that keeps faulting before the guest moves on (default 4). */
  readonly maxRetries?: number;
}

/**
 * vcpuMemstressTask: a vCPU thread of the memstress selftests (memstress.c, dirty_log_perf_test.c):
 * each KVM_RUN is one pass of the guest over its pages (an access to each, a write for 1 in
 * `writeFraction`), ended by GUEST_SYNC; between passes the thread spins in user space until the host
 * starts the next iteration, or quits.
 */
export function* vcpuMemstressTask(vcpu: Vcpu, opts: MemstressVcpuOptions): Gen<void> {
  const kvm = vcpu.kvm;
  kvm_get_kvm_at_spawn(kvm);
  vcpu_mode(vcpu);
  const fract = opts.writeFraction ?? 1;
  const maxRetries = opts.maxRetries ?? 4;
  const { iteration, quit } = opts;
  for (let it = 0; ; it++) {
    yield {
      kind: "wait",
      obj: iteration.id,
      objs: [quit.id],
      fn: currentFn(),
      step: `cpu_relax() until iteration ${it} starts`,
      enabled: () => iteration.v >= it || quit.v !== 0,
    };
    if (quit.v !== 0) break;
    let inGuest = false;
    for (let p = 0; p < opts.pages; p++) {
      const gfn = opts.start + p;
      const write = p % fract === 0;
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        if (!inGuest) {
          if (!(yield* vcpu_enter_guest(vcpu))) continue;
          inGuest = true;
        }
        if (yield* guest_access(vcpu, gfn, write)) break;
        yield* vcpu_exit_guest(vcpu);
        inGuest = false;
        yield* kvm_tdp_mmu_page_fault(vcpu, gfn, write);
      }
    }
    // GUEST_SYNC: a ucall exit to user space, which records the iteration as done.
    if (!inGuest) while (!(yield* vcpu_enter_guest(vcpu))) {}
    yield* vcpu_exit_guest(vcpu);
    yield* WRITE_ONCE(opts.completed, it);
  }
  yield* kvm_put_kvm(kvm);
}

export interface DestroyVmOptions {
  /**
   * Close the VM's file descriptor only after every other user has dropped its reference (default
   * true), so the teardown runs here; otherwise the last user's put runs it.
   */
  readonly waitForOthers?: boolean;
  /** Check L1 (every invalid root freed or about to be) before closing (default true). */
  readonly checkLiveness?: boolean;
}

/**
 * destroyVmTask: closing the VM's file descriptor, the reference kvm_create_vm() returned. Waits
 * for the other users first (by default), checks L1, and drops the reference: kvm_put_kvm() ->
 * kvm_destroy_vm() in kernel-protocol 3.16 order, then the leak check (invariant 14).
 */
export function destroyVmTask(kvm: Kvm, opts: DestroyVmOptions = {}): Gen<void> {
  // It holds a reference until every other user is gone (the wait below): their puts are never
  // the last one. Known from setup on, which is where the task is created.
  if (opts.waitForOthers ?? true) kvm.teardownHolds = true;
  return destroy_vm_body(kvm, opts);
}

function* destroy_vm_body(kvm: Kvm, opts: DestroyVmOptions): Gen<void> {
  ktask().isTeardown = true;
  if (opts.waitForOthers ?? true) {
    const users = kvm.users_count;
    // Wait for the puts of the references that exist now: each user's own reference object (which
    // its put completes), and the count for references taken in setup (class "kvm-users-put"
    // decrements). A user spawned meanwhile has a reference this wait does not cover: wait again.
    for (;;) {
      const refs = [...kvm.liveUserRefs];
      const live = kvm.liveUserRefs;
      yield {
        kind: "wait",
        obj: users.id,
        objs: [...(users.deps ?? []), ...refs],
        fn: currentFn(),
        step: "wait for the VM's other users to close",
        enabled: () => users.v - live.size <= 1 && refs.every((r) => !live.has(r)),
        awaits: refs,
      };
      if (users.v <= 1) break;
    }
  }
  if (opts.checkLiveness ?? true) check_invalid_roots_freed(kvm);
  yield* kvm_put_kvm(kvm);
}

export interface ChurnOptions {
  readonly machine?: Partial<MachineConfig>;
  /** Register the root invariants and the page-table invariants (default true). */
  readonly invariants?: boolean;
}

/**
 * A "churn" program over a tiny VM (4 levels, 2 entries per table: 16 gfns, memslot 0 = [0, 8),
 * memslot 1 = [8, 16)): two vCPUs faulting in both slots, memslot 1 deleted, an mmu_notifier
 * invalidation of [2, 6), clear_young over everything, dirty logging enabled on slot 0, and the
 * VM destroyed at the end.
 */
export function churnProgram(features: Features, opts: ChurnOptions = {}): Program {
  return ({ spawn }) => {
    bootMachine({ needResched: "choice", needReschedBudget: 2, ...opts.machine });
    const kvm = kvm_create_vm({ features, rootLevel: 4, ptesPerTable: 2, memslotPages: 8 });
    kvm.memslots.push({ id: 1, as_id: 0, base_gfn: 8, npages: 8, flags: 0, deleted: false });
    kvm_mmu_init_tdp_mmu(kvm);
    if (opts.invariants ?? true) {
      registerInvariants(kvm);
      register_page_table_checks(kvm);
    }
    const v0 = kvm_vcpu_create(kvm);
    const v1 = kvm_vcpu_create(kvm);
    spawn(
      "vcpu0",
      vcpuTask(v0, { faults: [{ gfn: 0, write: true }, { gfn: 9 }, { gfn: 3, write: true }], iterations: 2 }),
    );
    spawn("vcpu1", vcpuTask(v1, { faults: [{ gfn: 12, write: true }, { gfn: 2 }] }));
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[1]));
    spawn("notifier", notifierInvalidateTask(kvm, 2, 6));
    spawn("aging", agingTask(kvm, 0, 16, false));
    spawn("dirty-log", dirtyLogEnableTask(kvm, kvm.memslots[0]));
    spawn("destroy-vm", destroyVmTask(kvm));
  };
}
