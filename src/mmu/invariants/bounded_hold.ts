import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import { type KTask, ktask, machine } from "../../kernel/machine.js";
import { PG_LEVEL_1G } from "../tdp_iter.js";
import type { Kvm } from "../types.js";

/**
 * L3, bounded hold (kernel-protocol section 5): a task that holds mmu_lock, or is inside an RCU
 * read-side section, changes at most a bounded number of SPTEs between two preemption points. A
 * preemption point is where the kernel would give the CPU up if the tick asked for it
 * (need_resched() consulted, as tdp_mmu_iter_cond_resched() and cond_resched_rwlock_*() do, or
 * cond_resched()), or where the task becomes preemptible again (it lets go of its last spinning
 * lock and leaves RCU). Counting from the point, not from an actual yield, keeps the verdict
 * independent of how often need_resched() happens to answer true: the property is about the longest
 * stretch the code *could* be made to run, which is what stalls RCU and the lock's waiters.
 *
 * What counts: every SPTE whose change the TDP MMU hands to handle_changed_spte() (a zap, a
 * permission change, a link or split, and each child frozen while handle_removed_pt() tears a table
 * down). Accessed/Dirty bit clearing (aging, dirty-log masks) does not: the kernel bounds those walks
 * by the caller's range (one notifier range, one 64-bit mask), not by yielding.
 */

/**
 * tdp_mmu_iter_cond_resched() was called: a walk's yield point. Its forward-progress guard declines
 * without consulting need_resched() right after a yield (and at a walk's first SPTE), so the point is
 * the call itself: otherwise the last SPTE of one zap pass and the first of the next would count as
 * one stretch, which the kernel never promised otherwise.
 */
export function note_yield_point(): void {
  ktask().preemptPoints++;
}

/**
 * Run `walk`, whose caller passed can_yield = false, outside the meter: it says the context cannot
 * yield (a non-blockable mmu_notifier, range->may_block false; the 5.17 last put), so the bound on
 * its work is the caller's range, not a yield point. Not checked by L3 (docs/invariants.md).
 */
export function* unmetered_walk<T>(can_yield: boolean, walk: Gen<T>): Gen<T> {
  if (can_yield) return yield* walk;
  const k = ktask();
  unmetered.set(k, (unmetered.get(k) ?? 0) + 1);
  try {
    return yield* walk;
  } finally {
    unmetered.set(k, unmetered.get(k)! - 1);
  }
}

const unmetered = new WeakMap<KTask, number>();

/** Functions that change an SPTE for a caller: the report names the caller instead. */
const SETTERS =
  /^(handle_changed_spte|handle_removed_pt|(?:__)?tdp_mmu_\w*set_spte\w*|tdp_mmu_zap_spte_atomic|tdp_mmu_link_sp|tdp_mmu_split_huge_page)$/;

/** The innermost function of the running task that is not an SPTE setter. */
function changer(): string {
  const f = host().current.frames;
  for (let i = f.length - 1; i >= 0; i--) if (!SETTERS.test(f[i])) return f[i];
  return currentFn();
}

/** A task's count since its latest preemption point. */
interface Meter {
  /** KTask.preemptPoints when the count started. */
  points: number;
  count: number;
  /** The function that made the first change of the stretch (for the report). */
  first: string;
  reported: boolean;
}

const meters = new WeakMap<KTask, Meter>();

/**
 * The default bound: the kernel's unit. Since 1b6043e8e584 ("KVM: x86/mmu: Zap roots in two passes
 * to avoid inducing RCU stalls", v5.18) tdp_mmu_zap_root() zaps at the 1G level before the top level,
 * because KVM must be able to zap one 1G shadow page without a stall (so that a 1G huge page can
 * replace it in place): zapping one 1G SPTE, with handle_removed_pt() recursing over its 2M table and
 * their 4K tables, is the most the kernel does without a preemption point. With P entries per table
 * that is 1 + P + P^2 SPTEs (262,657 on hardware, 7 with the checker's usual 2-entry tables).
 * Before that commit (features.zapPasses "single") zap_gfn_range() tore top-level entries down with
 * their whole subtree, so the kernel had no bound: the default is none, and a user who wants to see
 * that stall sets the bound (holdBound) explicitly.
 */
export function default_hold_bound(kvm: Kvm): number {
  if (kvm.features.zapPasses === "single") return Number.POSITIVE_INFINITY;
  const p = kvm.geometry.ptesPerTable;
  let n = 0;
  for (let l = 0; l < PG_LEVEL_1G; l++) n += p ** l;
  return n;
}

/** The bound in force: the run's holdBound (YAML check.holdBound, --hold-bound) or the default. */
export function hold_bound(kvm: Kvm): number {
  return machine().config.holdBound ?? default_hold_bound(kvm);
}

/**
 * `n` SPTEs changed by the running task (handle_changed_spte() calls it per SPTE, the compressed
 * teardown of a pristine subtree once for the whole block). Reports L3 when the count since the
 * task's latest preemption point passes the bound, once per stretch.
 */
export function note_spte_changed(kvm: Kvm, what: string, n = 1): void {
  const k = ktask();
  if (k.rcuDepth === 0 && !k.held.some((h) => h.lock.id === kvm.mmu_lock.id)) return;
  if ((unmetered.get(k) ?? 0) > 0) return;
  let m = meters.get(k);
  if (m === undefined || m.points !== k.preemptPoints) {
    m = { points: k.preemptPoints, count: 0, first: changer(), reported: false };
    meters.set(k, m);
  }
  m.count += n;
  const bound = hold_bound(kvm);
  if (m.count <= bound || m.reported) return;
  m.reported = true;
  host().report({
    invariant: "L3-bounded-hold",
    message: `${changer()} changed ${what}, SPTE number ${m.count} since the task's last preemption point (the stretch began in ${m.first}), holding ${k.held.map((h) => h.lock.name).join(", ") || "no lock"}${k.rcuDepth > 0 ? " inside RCU" : ""}: more than the bound of ${bound} SPTEs between yield points`,
    details: { count: m.count, bound, first: m.first },
  });
}
