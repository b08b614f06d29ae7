import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import type { Atomic } from "../../kernel/atomic.js";
import { type KTask, ktask } from "../../kernel/machine.js";
import { roleInvalid } from "../role.js";
import {
  describeSpte,
  is_dirty_spte,
  is_frozen_spte,
  is_last_spte,
  is_shadow_present_pte,
  is_writable_pte,
  spte_to_pfn,
} from "../spte.js";
import type { Kvm, KvmMmuPage } from "../types.js";

/**
 * Page-table invariants (kernel-protocol.md section 5: 5, 9, 16, 17, 18).
 *
 * The model calls the ghost_* hooks at the points where the kernel's protocol
 * makes a promise (a page linked, an SPTE zapped, a flush done, a page freed);
 * the hooks only record or check, they never change what the model does.
 * register_page_table_checks() adds the checks that run after every step.
 */

/**
 * A change to a present SPTE in a valid, referenced root whose TLB flush is still owed: a zap, or a
 * leaf that lost Writable or Dirty while staying present (write-protection, dirty-state clearing).
 */
interface PendingFlush {
  readonly k: KTask;
  readonly task: string;
  readonly fn: string;
  readonly start: number;
  readonly end: number;
  readonly spte: string;
  readonly what: "zapped" | "write-protected" | "made clean" | "collapsed";
  /** The lock the owner must still hold when it is paid (see ghost_spte_protected). */
  readonly until: "mmu_lock" | "slots_lock";
  /** Other tasks that flushed the range since (it is not their debt, but they may rely on it). */
  readonly flushedBy: Set<KTask>;
}

interface PagesGhost {
  /** register_page_table_checks() was called: the point checks report too. */
  enabled: boolean;
  /** Pages that were ever made reachable from a root (tdp_mmu_link_sp). */
  readonly everLinked: Set<number>;
  readonly pending: PendingFlush[];
  /** SPTE words a freezer wrote FROZEN_SPTE into and that have not left that state yet. */
  readonly frozen: Set<Atomic>;
  /** Per invalid root: the present SPTEs reachable from it after the previous step. */
  readonly invalidSnapshot: Map<number, Set<number>>;
  /**
   * Linked page tables whose parent SPTE no SPTE setter of the model has taken away yet: each must
   * still be what its parent SPTE points at, or the SPTE must be non-present (a window of a zap).
   */
  readonly attached: Set<KvmMmuPage>;
}

const ghosts = new WeakMap<Kvm, PagesGhost>();

function ghost(kvm: Kvm): PagesGhost {
  let g = ghosts.get(kvm);
  if (g === undefined) {
    g = {
      enabled: false,
      everLinked: new Set(),
      pending: [],
      frozen: new Set(),
      invalidSnapshot: new Map(),
      attached: new Set(),
    };
    ghosts.set(kvm, g);
  }
  return g;
}

/** register_page_table_checks() was called for this VM: point checks elsewhere report too. */
export function page_checks_enabled(kvm: Kvm): boolean {
  return ghost(kvm).enabled;
}

/** The page whose spt holds `sptep` (sptep_to_sp), among the live pages. */
function pageOfSptep(kvm: Kvm, sptep: Atomic): KvmMmuPage | null {
  for (const sp of kvm.pages.values()) if (sptep.owner === sp.kobj) return sp;
  return null;
}

/** The root a live page table hangs from, following parent SPTE pointers. */
function rootOfPage(kvm: Kvm, sp: KvmMmuPage): KvmMmuPage | null {
  let cur: KvmMmuPage | null = sp;
  for (let depth = 0; cur !== null && !cur.isRoot && depth < 8; depth++) {
    cur = cur.ptep === null ? null : pageOfSptep(kvm, cur.ptep);
  }
  return cur?.isRoot ? cur : null;
}

/** A page table was linked into a tree (tdp_mmu_link_sp, or a test building tables by hand). */
export function ghost_sp_linked(kvm: Kvm, sp: KvmMmuPage): void {
  const g = ghost(kvm);
  g.everLinked.add(sp.pageId);
  g.attached.add(sp);
}

/**
 * An SPTE setter (cmpxchg, xchg, or a store under the write lock, all of which hand the old value
 * to handle_changed_spte()) replaced `old_spte`: a table it pointed at is being torn down.
 */
export function ghost_spte_replaced(kvm: Kvm, old_spte: number, level: number): void {
  if (!is_shadow_present_pte(old_spte) || is_last_spte(old_spte, level)) return;
  const child = kvm.pages.get(spte_to_pfn(old_spte));
  if (child !== undefined) ghost(kvm).attached.delete(child);
}

/**
 * page-table-orphaned: a linked page table leaves the tree only through its parent SPTE's setter,
 * which sees the old value and tears the table down (handle_removed_pt()). A store that did not see
 * the table (a plain store under the read lock, over a table another task linked meanwhile) leaves
 * it reachable from nowhere, with whatever it maps: never zapped, flushed or freed.
 */
function checkOrphans(kvm: Kvm): void {
  const g = ghost(kvm);
  for (const sp of g.attached) {
    if (sp.kobj.freed !== null || sp.ptep === null || sp.ptep.owner?.freed) {
      g.attached.delete(sp);
      continue;
    }
    const v = sp.ptep.v;
    if (!is_shadow_present_pte(v)) continue;
    if (!is_last_spte(v, sp.level + 1) && spte_to_pfn(v) === sp.pageId) continue;
    g.attached.delete(sp);
    host().report({
      invariant: "page-table-orphaned",
      message: `${sp.kobj.name} was unlinked without being torn down: its parent ${sp.ptep.name} now holds ${describeSpte(v, sp.level + 1)}, written by a store that did not see the table`,
      details: { page: sp.kobj.name, sptep: sp.ptep.name },
    });
    return;
  }
}

/** A freezer wrote FROZEN_SPTE into `sptep`. */
export function ghost_spte_frozen(kvm: Kvm, sptep: Atomic): void {
  ghost(kvm).frozen.add(sptep);
}

/**
 * A present SPTE mapping [gfn, gfn + npages) was made non-present. Invalid
 * roots cannot be loaded, and a root nobody references cannot be in use, so
 * neither owes a flush; tdp_mmu_zap_root() is documented as never needing one
 * (invalid roots, or a VM that will not run again), so its zaps are exempt too.
 */
export function ghost_spte_zapped(kvm: Kvm, sptep: Atomic, gfn: number, npages: number, old: number): void {
  if (host().current.frames.includes("tdp_mmu_zap_root")) return;
  owe(kvm, sptep, pageOfSptep(kvm, sptep), gfn, npages, old, "zapped", "mmu_lock");
}

/**
 * A page table mapping [gfn, gfn + npages) was replaced by a huge leaf (huge page recovery, or a
 * fault mapping huge over a table). vCPUs may still hold the old small translations and the
 * paging-structure caches may still point into the table, which goes back to the allocator after an
 * RCU grace period; the replacer flushes before it lets go of mmu_lock (recover_huge_pages_range(),
 * tdp_mmu_map_handle_target_level()).
 */
export function ghost_table_collapsed(
  kvm: Kvm,
  sptep: Atomic,
  gfn: number,
  npages: number,
  old: number,
): void {
  owe(kvm, sptep, pageOfSptep(kvm, sptep), gfn, npages, old, "collapsed", "mmu_lock");
}

/**
 * A present leaf mapping [gfn, gfn + npages) stays present but loses Writable, or (`cleaning`: the
 * dirty-log paths that clear it on purpose) Dirty. A vCPU's TLB may still hold the old permission: a write
 * through it is neither stopped nor logged (a stale Dirty bit is never set again). The kernel pays
 * the flush before the promise it serves is visible. Dirty logging (enabling it, GET/CLEAR_DIRTY_LOG,
 * run with slots_lock held) may flush after dropping mmu_lock but before returning to user space,
 * which the model reads as before slots_lock is released (kvm_mmu_slot_apply_flags() says so for
 * enabling; kvm_get_dirty_log_protect() flushes after its write_unlock()). Write-protection for
 * page tracking holds mmu_lock for write and flushes before dropping it, as a zap does.
 */
export function ghost_spte_protected(
  kvm: Kvm,
  sptep: Atomic,
  gfn: number,
  npages: number,
  old: number,
  now: number,
  cleaning = false,
): void {
  // The bit tests first: every present-to-present SPTE write comes through here, and finding the
  // page that holds the SPTE walks every live page.
  let what: PendingFlush["what"];
  if (is_writable_pte(old) && !is_writable_pte(now)) what = "write-protected";
  else if (cleaning && is_dirty_spte(old) && !is_dirty_spte(now)) what = "made clean";
  else return;
  const sp = pageOfSptep(kvm, sptep);
  if (sp === null || !is_last_spte(old, sp.level) || !is_last_spte(now, sp.level)) return;
  const holdsSlots = ktask().held.some((h) => h.lock.id === kvm.slots_lock.id);
  owe(kvm, sptep, sp, gfn, npages, old, what, holdsSlots ? "slots_lock" : "mmu_lock");
}

function owe(
  kvm: Kvm,
  sptep: Atomic,
  sp: KvmMmuPage | null,
  gfn: number,
  npages: number,
  old: number,
  what: PendingFlush["what"],
  until: PendingFlush["until"],
): void {
  const root = sp === null ? null : rootOfPage(kvm, sp);
  if (root === null || roleInvalid(root.role.v) || root.tdp_mmu_root_count.v <= 0) return;
  ghost(kvm).pending.push({
    k: ktask(),
    task: host().current.name,
    fn: currentFn(),
    start: gfn,
    end: gfn + npages,
    spte: `${sptep.name} (${describeSpte(old, sp!.level)})`,
    what,
    until,
    flushedBy: new Set(),
  });
}

/**
 * A remote flush of [start, end) completed: every flush the flushing task owes inside it is paid.
 * Only its own (others' debts only note that this task flushed after them): the kernel's rule is
 * that whoever changes an SPTE flushes (or hands the need to its caller, the same task), never
 * that it may count on someone else's flush. It also keeps the ghost
 * a function of the trace: whether another task's flush came after a change depends on the order of
 * two independent steps, which the checker does not explore both ways.
 */
export function ghost_tlb_flushed(kvm: Kvm, start: number, end: number): void {
  const p = ghost(kvm).pending;
  const k = ktask();
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i].start < start || p[i].end > end) continue;
    if (p[i].k === k) p.splice(i, 1);
    else p[i].flushedBy.add(k);
  }
}

/**
 * Invariant 17 where write tracking makes its promise (__kvm_write_track_add_gfn(), v6.6): when it
 * returns, no vCPU may still write `gfn` without an exit. A flush owed by anyone for a change that
 * took Writable away from it (write-protection, or a zap) breaks that promise: the TLB may still
 * hold the writable translation. This is the race of 6dbf79e7164e ("KVM: Fix write protection race
 * during dirty logging", 2012): a task that found the SPTE already read-only skipped its flush
 * while the task that had made it read-only had not flushed yet. The caller reads the VM's TLB
 * word first (tlb_flush_state_observed), so the explorers order this check against every flush.
 */
export function check_write_track_flushed(kvm: Kvm, gfn: number): void {
  const g = ghost(kvm);
  if (!g.enabled) return;
  for (const p of g.pending) {
    if (p.what === "made clean" || gfn < p.start || gfn >= p.end || p.flushedBy.has(ktask())) continue;
    host().report({
      invariant: "inv17-no-lost-flush",
      message: `${currentFn()} returned with gfn ${gfn} write-tracked while a TLB flush for it is still owed by ${p.task} (${p.what} in ${p.fn}: ${p.spte}): the guest can still write it without an exit`,
      details: { gfn, owner: p.task, fn: p.fn, what: p.what },
    });
    return;
  }
}

/**
 * Invariant 18: no SPTE is written through an iterator that yielded since it
 * read the SPTE. Called by every setter that takes an iterator.
 */
export function check_iter_not_stale(iter: {
  readonly kvm: Kvm;
  readonly yielded: boolean;
  readonly sptep: Atomic;
}): void {
  if (!iter.yielded || !ghost(iter.kvm).enabled) return;
  host().report({
    invariant: "inv18-no-stale-iterator",
    message: `${currentFn()} used ${iter.sptep.name} through an iterator that yielded mmu_lock since it read it`,
    details: { sptep: iter.sptep.name },
  });
}

/**
 * Invariants 5 and 16 at the moment a page-table page is freed: a page that was
 * ever reachable from a root may only be freed from an RCU callback, after its
 * parent SPTE stopped pointing at it, and with no present SPTE left in it.
 * Pages that were never linked (a lost race in the fault path) may be freed at once.
 */
export function check_sp_free(kvm: Kvm, sp: KvmMmuPage): void {
  const g = ghost(kvm);
  if (!g.enabled || sp.isRoot || !g.everLinked.has(sp.pageId)) return;
  const k = ktask();
  if (!k.inSoftirq) {
    host().report({
      invariant: "inv5-rcu-free-page-table",
      message: `${sp.kobj.name} was linked into a root but ${currentFn()} freed it outside an RCU callback`,
      details: { page: sp.kobj.name },
    });
    return;
  }
  const parent = sp.ptep?.v ?? 0;
  if (
    is_shadow_present_pte(parent) &&
    !is_last_spte(parent, sp.level + 1) &&
    spte_to_pfn(parent) === sp.pageId
  ) {
    host().report({
      invariant: "inv5-rcu-free-page-table",
      message: `${sp.kobj.name} freed while ${sp.ptep!.name} still points at it`,
      details: { page: sp.kobj.name },
    });
    return;
  }
  for (const s of sp.spt) {
    if (is_shadow_present_pte(s.v)) {
      host().report({
        invariant: "inv16-frozen-before-free",
        message: `${sp.kobj.name} freed with ${s.name} still present (${describeSpte(s.v, sp.level)}): its children were not frozen`,
        details: { page: sp.kobj.name, spte: s.name },
      });
      return;
    }
  }
}

/** Present SPTEs reachable from `root` now (atom ids), read without ops: ghost only. */
function presentSptes(kvm: Kvm, root: KvmMmuPage): Set<number> {
  const out = new Set<number>();
  const stack: KvmMmuPage[] = [root];
  while (stack.length > 0) {
    const sp = stack.pop()!;
    for (const s of sp.spt) {
      const v = s.v;
      if (!is_shadow_present_pte(v)) continue;
      out.add(s.id);
      if (is_last_spte(v, sp.level)) continue;
      const child = kvm.pages.get(spte_to_pfn(v));
      if (child !== undefined && child.kobj.freed === null) stack.push(child);
    }
  }
  return out;
}

/** Invariant 9: after `invalid` is set, a root gains no present SPTE and no page table. */
function checkInv9(kvm: Kvm): void {
  const snap = ghost(kvm).invalidSnapshot;
  for (const root of kvm.pages.values()) {
    if (!root.isRoot || root.kobj.freed !== null || !roleInvalid(root.role.v)) continue;
    const cur = presentSptes(kvm, root);
    const prev = snap.get(root.pageId);
    snap.set(root.pageId, cur);
    if (prev === undefined) continue;
    for (const id of cur) {
      if (prev.has(id)) continue;
      host().report({
        invariant: "inv9-no-new-spte-in-invalid-root",
        message: `${host().objectName(id)} became present in ${root.kobj.name} after the root was invalidated`,
        details: { root: root.kobj.name, spte: host().objectName(id) },
      });
      return;
    }
  }
}

/** Invariant 16: a frozen SPTE is never turned into a present one (only its freezer may change it). */
function checkInv16(kvm: Kvm): void {
  const frozen = ghost(kvm).frozen;
  for (const s of frozen) {
    if (is_frozen_spte(s.v)) continue;
    frozen.delete(s);
    if (is_shadow_present_pte(s.v)) {
      host().report({
        invariant: "inv16-frozen-spte",
        message: `frozen ${s.name} was overwritten with a present value (${describeSpte(s.v, 1)})`,
        details: { spte: s.name },
      });
      return;
    }
  }
}

/**
 * Invariant 17: a task that zapped a present SPTE in a valid root flushes (or
 * has the flush done) before it lets go of mmu_lock, cond_resched included; one
 * that write-protected or cleaned a leaf for dirty logging, before it releases
 * slots_lock (returns to user space).
 */
function checkInv17(kvm: Kvm): void {
  for (const p of ghost(kvm).pending) {
    const lock = p.until === "mmu_lock" ? kvm.mmu_lock : kvm.slots_lock;
    if (p.k.held.some((h) => h.lock.id === lock.id)) continue;
    host().report({
      invariant: "inv17-no-lost-flush",
      message: `${p.task} dropped ${p.until} owing a TLB flush for gfns [${p.start}, ${p.end}) ${p.what} in ${p.fn}: ${p.spte}`,
      details: { task: p.task, fn: p.fn, start: p.start, end: p.end, what: p.what },
    });
    return;
  }
}

/** Register the page-table checks (invariants 9, 16 and 17) to run after every step. */
export function register_page_table_checks(kvm: Kvm): void {
  const h = host();
  ghost(kvm).enabled = true;
  h.addCheck("inv9-no-new-spte-in-invalid-root", () => checkInv9(kvm));
  h.addCheck("inv16-frozen-spte", () => checkInv16(kvm));
  h.addCheck("page-table-orphaned", () => checkOrphans(kvm));
  h.addCheck("inv17-no-lost-flush", () => checkInv17(kvm));
}
