import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import { type Atomic, READ_ONCE, try_cmpxchg, WRITE_ONCE, withBit } from "../kernel/atomic.js";
import { lockdep_assert_held_write, lockdep_assert_preemption_disabled } from "../kernel/lockdep.js";
import { machine } from "../kernel/machine.js";
import { preempt_disable, preempt_enable } from "../kernel/sched.js";
import { KVM_MMU_WARN_ON } from "../kernel/warn.js";
import { INV19 } from "./invariants/rmap.js";
import { rmapAgeLockless } from "./rmap.js";
import { KVM_RMAP_LOCKED, type KvmRmapHead } from "./rmap_context.js";
import {
  __kvm_rmap_lock,
  __kvm_rmap_unlock,
  kvm_rmap_get,
  kvm_rmap_lock,
  kvm_rmap_unlock,
  rmapWaitUnlocked,
} from "./rmap_lock.js";
import { addToSingle, dirtyVsAger, emptyRace, twoAgers, zapAll, zapThenRefill } from "./rmap_scenarios.js";
import { mark_spte_for_access_track, spte_ad_enabled } from "./rmap_spte.js";
import type { RmapScenario } from "./rmap_testkit.js";
import { SPTE_BIT } from "./spte.js";
import type { Kvm } from "./types.js";

/*
 * The designs seed 004 rules out (seed-variants.md B23), as per-run overrides
 * of the 6.15 model functions: pass `overrides` to runProgram/enumerateAll.
 * Each override receives the original implementation first.
 */

type Overrides = ReadonlyMap<string, Function>;

/**
 * (a) The read-only unlock writes back what the lock returned even when that
 * was 0 (nothing locked). A writer may have put the first SPTE in meanwhile;
 * the store erases it. CONFIG_KVM_PROVE_MMU's WARN catches it only when the
 * add lands before the WARN's load; otherwise, and always in production
 * builds, the entry is silently lost.
 */
export const unlockReadonlyStoresZero: Overrides = new Map<string, Function>([
  [
    "kvm_rmap_unlock_readonly",
    function* (_orig: unknown, head: KvmRmapHead, old: number): Gen<void> {
      if (machine().config.proveMmu) {
        const cur = yield* kvm_rmap_get(head);
        KVM_MMU_WARN_ON(old !== cur, "old_val != kvm_rmap_get(rmap_head)", { head: head.name, old, cur });
      }
      yield* __kvm_rmap_unlock(head, old);
      // Preemption was re-enabled by the lock when it returned 0.
      if (old !== 0) preempt_enable();
    },
  ],
]);

/** The writers mutation (b) strips the bit from: the ones that unlink SPTEs and free descs. */
const UNLINKING_WRITERS = new Set(["pte_list_remove", "kvm_zap_all_rmap_sptes"]);

/**
 * (b) pte_list_remove() and kvm_zap_all_rmap_sptes() change the chain under the
 * write mmu_lock alone, as before 6.15, while agers walk it locklessly: the
 * writer may free a desc a reader is walking (use-after-free), and its
 * publishing store may clobber the reader's bit.
 */
export const writerSkipsRmapLock: Overrides = new Map<string, Function>([
  [
    "kvm_rmap_lock",
    function* (orig: Function, kvm: Kvm, head: KvmRmapHead): Gen<number> {
      const frames = host().current.frames;
      // frames ends with [..., caller, "kvm_rmap_lock"].
      if (!UNLINKING_WRITERS.has(frames[frames.length - 2])) return yield* orig(kvm, head);
      lockdep_assert_held_write(kvm.mmu_lock);
      return yield* kvm_rmap_get(head);
    },
  ],
]);

/** A plain C `*sptep &= ~shadow_accessed_mask`: load, then store, with a window in between. */
function* ageSpteNonatomic(sptep: Atomic, spte: number): Gen<void> {
  if (!spte_ad_enabled(spte)) {
    yield* WRITE_ONCE(sptep, mark_spte_for_access_track(spte));
    return;
  }
  const cur = yield* READ_ONCE(sptep);
  yield* WRITE_ONCE(sptep, withBit(cur, SPTE_BIT.accessed, false));
}

/**
 * (c) The lockless ager clears A with a non-atomic read-modify-write. The rmap
 * bit does not protect SPTE values: a Dirty bit the CPU sets in the window
 * is lost.
 */
export const nonAtomicAgeClear: Overrides = new Map<string, Function>([
  [
    "kvm_rmap_age_gfn_range",
    function* (orig: Function, kvm: Kvm, heads: readonly KvmRmapHead[], testOnly: boolean): Gen<boolean> {
      if (!kvm.features.locklessAging) return yield* orig(kvm, heads, testOnly);
      return yield* rmapAgeLockless(heads, testOnly, ageSpteNonatomic);
    },
  ],
]);

/**
 * (d) The lockless ager takes the writers' lock (kvm_rmap_lock) instead of the
 * read-only one, without holding mmu_lock: the assertion the seed's TODO
 * asked for fires. Preemption is handled as the read-only lock does, so the
 * mmu_lock assertion is the only complaint.
 */
export const lockWithoutMmuLock: Overrides = new Map<string, Function>([
  [
    "kvm_rmap_lock_readonly",
    function* (_orig: unknown, head: KvmRmapHead): Gen<number> {
      preempt_disable();
      const v = yield* kvm_rmap_lock(head.ctx.kvm, head);
      if (v === 0) preempt_enable();
      return v;
    },
  ],
  [
    "kvm_rmap_unlock_readonly",
    function* (_orig: unknown, head: KvmRmapHead, old: number): Gen<void> {
      if (old === 0) return;
      yield* kvm_rmap_unlock(head.ctx.kvm, head, old);
      preempt_enable();
    },
  ],
]);

/**
 * (e) The read-only lock without preempt_disable(): a reader could be
 * scheduled out holding the bit while a write-lock holder spins on it
 * (B23 hazard 2). lockdep_assert_preemption_disabled() catches it.
 */
export const readonlyLockPreemptible: Overrides = new Map<string, Function>([
  [
    "kvm_rmap_lock_readonly",
    function* (_orig: unknown, head: KvmRmapHead): Gen<number> {
      const v = yield* __kvm_rmap_lock(head);
      if (v !== 0) preempt_disable();
      return v;
    },
  ],
]);

/**
 * (f) __kvm_rmap_lock() without the re-check for 0 after waiting: the holder
 * may have emptied the rmap, and the cmpxchg then locks an empty rmap. The
 * read-only caller gets 0, so its unlock is a no-op and the bit stays set for
 * good; the next writer spins forever.
 */
export const lockSkipsEmptyRecheck: Overrides = new Map<string, Function>([
  [
    "__kvm_rmap_lock",
    function* (_orig: unknown, head: KvmRmapHead): Gen<number> {
      lockdep_assert_preemption_disabled();
      const a = head.val;
      let old = yield* READ_ONCE(a);
      if (old === 0) return 0;
      for (;;) {
        if ((old & KVM_RMAP_LOCKED) !== 0) old = yield* rmapWaitUnlocked(head);
        const r = yield* try_cmpxchg(a, old, old | KVM_RMAP_LOCKED);
        if (r.ok) break;
        old = r.old;
      }
      head.ctx.observer?.locked(head, old);
      return old;
    },
  ],
]);

/**
 * (g) The bit taken with a plain load and store instead of try_cmpxchg: two
 * lockers can both see it clear and both "own" the rmap.
 */
export const lockWithPlainStore: Overrides = new Map<string, Function>([
  [
    "__kvm_rmap_lock",
    function* (_orig: unknown, head: KvmRmapHead): Gen<number> {
      lockdep_assert_preemption_disabled();
      const a = head.val;
      let old = yield* READ_ONCE(a);
      if (old === 0) return 0;
      if ((old & KVM_RMAP_LOCKED) !== 0) old = yield* rmapWaitUnlocked(head);
      if (old === 0) return 0;
      yield* WRITE_ONCE(a, old | KVM_RMAP_LOCKED);
      head.ctx.observer?.locked(head, old);
      return old;
    },
  ],
]);

export interface RmapMutation {
  readonly name: string;
  /** Letter in seed-variants.md B23 ((a)-(c)) or the extra hazards (d)-(g) of this model. */
  readonly tag: string;
  readonly summary: string;
  readonly overrides: Overrides;
  /** The smallest two-task program that shows it. */
  readonly scenario: RmapScenario;
  /** Invariants that may be the first violation of a failing run: the rule broken. */
  readonly first: readonly string[];
  /** The damage, seen when a run goes on past its first violation. */
  readonly consequence: string;
}

/** Every seed-004 mutation, for tests and the seeds report. */
export const RMAP_MUTATIONS: readonly RmapMutation[] = [
  {
    name: "unlockReadonlyStoresZero",
    tag: "a",
    summary: "read-only unlock stores the 0 it got back, over a concurrent first pte_list_add",
    overrides: unlockReadonlyStoresZero,
    // Production builds: no CONFIG_KVM_PROVE_MMU, so no WARN to give it away.
    scenario: { ...emptyRace, machine: { proveMmu: false } },
    first: [INV19.lostEntry],
    consequence: INV19.lostEntry,
  },
  {
    name: "writerSkipsRmapLock",
    tag: "b",
    summary: "pte_list_remove / kvm_zap_all_rmap_sptes change the chain under mmu_lock without the rmap bit",
    overrides: writerSkipsRmapLock,
    scenario: zapAll,
    first: [INV19.unlockedWrite, INV19.descFreed],
    consequence: "use-after-free",
  },
  {
    name: "nonAtomicAgeClear",
    tag: "c",
    summary: "the lockless ager clears A with a plain load and store",
    overrides: nonAtomicAgeClear,
    scenario: dirtyVsAger,
    first: [INV19.lostDirty],
    consequence: INV19.lostDirty,
  },
  {
    name: "lockWithoutMmuLock",
    tag: "d",
    summary: "the ager takes the writers' rmap lock without the write mmu_lock",
    overrides: lockWithoutMmuLock,
    scenario: addToSingle,
    first: ["lockdep"],
    consequence: "lockdep",
  },
  {
    name: "readonlyLockPreemptible",
    tag: "e",
    summary: "the read-only rmap lock is taken with preemption enabled",
    overrides: readonlyLockPreemptible,
    scenario: addToSingle,
    first: ["lockdep"],
    consequence: "lockdep",
  },
  {
    name: "lockSkipsEmptyRecheck",
    tag: "f",
    summary: "__kvm_rmap_lock does not re-check for an emptied rmap after waiting",
    overrides: lockSkipsEmptyRecheck,
    scenario: zapThenRefill,
    first: [INV19.emptyLocked],
    consequence: "deadlock",
  },
  {
    name: "lockWithPlainStore",
    tag: "g",
    summary: "__kvm_rmap_lock sets the bit with a plain store instead of try_cmpxchg",
    overrides: lockWithPlainStore,
    scenario: twoAgers,
    first: [INV19.mutex],
    consequence: INV19.mutex,
  },
];
