import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { Atomic, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine, type MachineConfig } from "../kernel/machine.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import type { Features } from "./features.js";
import { register_page_table_checks } from "./invariants/pages.js";
import { check_invalid_roots_freed, check_slot_unmapped, registerInvariants } from "./invariants/roots.js";
import { defaultHostPfn, kvm_create_vm, kvm_vcpu_create, pagesPerHpage } from "./kvm.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import {
  kvm_mmu_notifier_clear_young,
  kvm_mmu_notifier_invalidate_range_end,
  kvm_mmu_notifier_invalidate_range_start,
  kvm_mmu_notifier_test_young,
} from "./mmu_notifier.js";
import { KVM_MAX_HUGEPAGE_LEVEL, PG_LEVEL_4K } from "./tdp_iter.js";
import { kvm_mmu_init_tdp_mmu, kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import { KVM_MEM_LOG_DIRTY_PAGES, kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { kvm_tdp_mmu_clear_dirty_slot, kvm_tdp_mmu_wrprot_slot } from "./tdp_mmu_walks.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, Memslot, Vcpu } from "./types.js";
import { kvm_mmu_unload, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "./vcpu.js";

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
    for (const f of opts.faults) {
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        // A request that arrived while entering is serviced on the next entry.
        if (!(yield* vcpu_enter_guest(vcpu))) continue;
        // The guest touches the page; the EPT violation exits to the host.
        yield* vcpu_exit_guest(vcpu);
        const r = yield* kvm_tdp_mmu_page_fault(vcpu, f.gfn, f.write ?? false);
        if (r !== "RET_PF_RETRY") break;
      }
    }
  }
  if (opts.unload ?? true) yield* kvm_mmu_unload(vcpu);
  yield* kvm_put_kvm(kvm);
}

/** Shared words the host side of a VM writes outside struct kvm's MMU state. */
interface HostState {
  /** kvm->memslots: the active memslot array, replaced by memslot updates (read under SRCU). */
  readonly memslots: Atomic;
  /** The primary MMU's page tables behind the guest's memory. */
  readonly mm: Atomic;
}

const hostStates = new WeakMap<Kvm, HostState>();

/** The host-side words of `kvm` (created on first use, normally in a task's spawn prologue). */
function hostState(kvm: Kvm): HostState {
  let h = hostStates.get(kvm);
  if (h === undefined) {
    h = { memslots: new Atomic("memslots", 0, kvm.kobj), mm: new Atomic("mm", 0, kvm.kobj) };
    hostStates.set(kvm, h);
  }
  return h;
}

/**
 * Publish a memslot change (kvm_swap_active_memslots(): a new array, generation + 1). Readers
 * (faults, notifiers) take the array under SRCU and read it with plain loads.
 */
function* kvm_swap_active_memslots(kvm: Kvm, change: () => void): Gen<void> {
  const h = hostState(kvm);
  yield* WRITE_ONCE(h.memslots, h.memslots.v + 1);
  change();
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
const migrate_pages = modelFn("migrate_pages", function* (kvm: Kvm, start: number, end: number): Gen<void> {
  const h = hostState(kvm);
  yield* WRITE_ONCE(h.mm, h.mm.v + 1);
  for (let gfn = start; gfn < end; gfn++) {
    const old = kvm.hostPfn.get(gfn) ?? defaultHostPfn(gfn);
    kvm.hostPfn.set(gfn, old + 0x100000);
  }
});

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

/** dirtyLogEnableTask: KVM_SET_USER_MEMORY_REGION setting KVM_MEM_LOG_DIRTY_PAGES on `slot`. */
export function* dirtyLogEnableTask(kvm: Kvm, slot: Memslot): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  hostState(kvm);
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_swap_active_memslots(kvm, () => {
    slot.flags |= KVM_MEM_LOG_DIRTY_PAGES;
  });
  yield* kvm_mmu_slot_remove_write_access(kvm, slot, PG_LEVEL_4K);
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
export function* destroyVmTask(kvm: Kvm, opts: DestroyVmOptions = {}): Gen<void> {
  if (opts.waitForOthers ?? true) {
    const users = kvm.users_count;
    yield {
      kind: "wait",
      obj: users.id,
      objs: users.deps,
      fn: currentFn(),
      step: "wait for the VM's other users to close",
      enabled: () => users.v <= 1,
    };
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
