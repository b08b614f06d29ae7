import { host } from "../../engine/host.js";
import { machine } from "../../kernel/machine.js";
import { peekEntries } from "../../kernel/rculist.js";
import { pagesPerHpage } from "../kvm.js";
import { describeRole, roleInvalid } from "../role.js";
import { is_last_spte, is_shadow_present_pte, spte_to_pfn } from "../spte.js";
import type { Kvm, KvmMmuPage, Vcpu } from "../types.js";

/**
 * Root-lifecycle invariants (kernel-protocol.md section 5: 1-4, 6-8, 10-15, L1, L2).
 *
 * Two kinds of checks live here:
 * - state checks run by the engine after every step (registerInvariants): they look at the
 *   refcounts, role words, list membership and lock holders of every root of the VM;
 * - point checks the model calls at the moment a property must hold (a fast zap returning, an
 *   invalidate_range_start returning, a vCPU entering the guest, the VM being torn down).
 *
 * The ghost state below is written by model code but never read by it: it only records what the
 * checks need to know about the past (which roots a fast zap invalidated, which work items are
 * queued, how often a scheduled zap was consumed).
 */

/** Invariant names, as reported in violations. */
export const INV = {
  refcountNonneg: "inv1-refcount-nonneg",
  noResurrect: "inv2-no-resurrect",
  listMembership: "inv3-list-membership",
  noUafRoots: "inv4-no-uaf-roots",
  invalidMonotone: "inv6-invalid-monotone",
  finalPutInvalid: "inv7-final-put-invalid",
  noInvalidRootEntered: "inv8-no-invalid-root-entered",
  fastZapComplete: "inv10-fast-zap-complete",
  notifierComplete: "inv11-notifier-complete",
  zapOnce: "inv12-zap-once",
  workOnce: "inv13-work-once",
  teardownClean: "inv14-teardown-clean",
  lockDiscipline: "inv15-lock-discipline",
  invalidRootsFreed: "L1-invalid-roots-freed",
  yieldProgress: "L2-yield-progress",
} as const;

export type RootInvariant = (typeof INV)[keyof typeof INV];

/** Per-root ghost record. */
interface RootRecord {
  readonly root: KvmMmuPage;
  /** Was on tdp_mmu_roots at some point (published). */
  published: boolean;
  /** Refcount and invalid bit as last seen by the state check. */
  lastCount: number;
  lastInvalid: boolean;
  /** E3: the one permitted 0 -> 1 (the defunct root's reference handed to the worker) happened. */
  resurrected: boolean;
  /** E5+: times tdp_mmu_scheduled_root_to_zap was set / consumed. */
  scheduledSet: number;
  scheduledConsumed: number;
  /** E3-E4: work items queued for this root, and how many the worker has started / put. */
  workQueued: number;
  workStarted: number;
  workerPuts: number;
  /** call_rcu() was called on the root: it will be freed after a grace period. */
  freeQueued: boolean;
  /** Violations already reported for this root, so one bug is reported once. */
  readonly reported: Set<string>;
}

/** Per-VM ghost state. */
interface RootGhost {
  readonly roots: Map<number, RootRecord>;
  /** Page ids on tdp_mmu_roots after the last step, in list order. */
  listSnapshot: string;
  fastZapSerial: number;
  /**
   * Invalidations between marking roots invalid and the return of the request that kicks vCPUs
   * out of the guest: a vCPU may enter on a just-invalidated root in that window (entering takes
   * no lock), and the kick then brings it out before anything is zapped.
   */
  invalidationsInFlight: number;
}

const ghosts = new WeakMap<Kvm, RootGhost>();

function ghostOf(kvm: Kvm): RootGhost {
  let g = ghosts.get(kvm);
  if (g === undefined) {
    g = { roots: new Map(), listSnapshot: "", fastZapSerial: 0, invalidationsInFlight: 0 };
    ghosts.set(kvm, g);
  }
  return g;
}

function recordOf(kvm: Kvm, root: KvmMmuPage): RootRecord {
  const g = ghostOf(kvm);
  let r = g.roots.get(root.pageId);
  if (r === undefined) {
    r = {
      root,
      published: false,
      lastCount: root.tdp_mmu_root_count.v,
      lastInvalid: roleInvalid(root.role.v),
      resurrected: false,
      scheduledSet: 0,
      scheduledConsumed: 0,
      workQueued: 0,
      workStarted: 0,
      workerPuts: 0,
      freeQueued: false,
      reported: new Set(),
    };
    g.roots.set(root.pageId, r);
  }
  return r;
}

function rootDetails(root: KvmMmuPage): Record<string, unknown> {
  return {
    root: root.kobj.name,
    refcount: root.tdp_mmu_root_count.v,
    role: describeRole(root.role.v),
    onList: root.link.onList,
    freed: root.kobj.freed !== null,
  };
}

/** env key: invariants a design under test deliberately changes (see Variant.waives). */
export const WAIVED_INVARIANTS = "invariants.waived";
const NONE: ReadonlySet<string> = new Set();

function waivedInvariants(): ReadonlySet<string> {
  return (host().env.get(WAIVED_INVARIANTS) as ReadonlySet<string> | undefined) ?? NONE;
}

/** Report a violation of a root invariant unless the design under test waives it. */
function reportInvariant(name: RootInvariant, message: string, details: Record<string, unknown>): void {
  if (waivedInvariants().has(name)) return;
  host().report({ invariant: name, message, details });
}

/** Report a root invariant violation (once per root and invariant when `root` is given). */
export function reportRootViolation(
  name: RootInvariant,
  message: string,
  details: Record<string, unknown> = {},
  kvm?: Kvm,
  root?: KvmMmuPage,
): void {
  if (waivedInvariants().has(name)) return;
  if (kvm !== undefined && root !== undefined) {
    const r = recordOf(kvm, root);
    if (r.reported.has(name)) return;
    r.reported.add(name);
  }
  host().report({
    invariant: name,
    message,
    details: root !== undefined ? { ...rootDetails(root), ...details } : details,
  });
}

// ---- ghost hooks called by the model -------------------------------------------------------

/** A root was just published on tdp_mmu_roots. */
export function ghost_root_published(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  r.published = true;
  r.lastCount = root.tdp_mmu_root_count.v;
}

/** call_rcu() was called to free the root. */
export function ghost_root_free_queued(kvm: Kvm, root: KvmMmuPage): void {
  recordOf(kvm, root).freeQueued = true;
}

/** A reference was gifted to the zapper or the worker (kvm->ghost.gifts, per root). */
export function ghost_gift(kvm: Kvm, root: KvmMmuPage): void {
  kvm.ghost.gifts.set(root.pageId, (kvm.ghost.gifts.get(root.pageId) ?? 0) + 1);
}

/** The zapper or the worker put a gifted reference. A put without a gift is invariant 13 (E3+) or 12. */
export function ghost_gift_put(kvm: Kvm, root: KvmMmuPage, who: RootInvariant): void {
  const n = (kvm.ghost.gifts.get(root.pageId) ?? 0) - 1;
  kvm.ghost.gifts.set(root.pageId, n);
  if (n < 0) {
    reportRootViolation(
      who,
      `${root.kobj.name}: a gifted reference was put that was never gifted`,
      {},
      kvm,
      root,
    );
  }
}

/** E5+: tdp_mmu_scheduled_root_to_zap was set (with invalid). Setting it twice is invariant 12. */
export function ghost_scheduled_set(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  r.scheduledSet++;
  if (r.scheduledSet > 1) {
    reportRootViolation(INV.zapOnce, `${root.kobj.name} was scheduled for zapping twice`, {}, kvm, root);
  }
}

/** E5+: zap_invalidated_roots consumed the flag. Consuming it more often than it was set is invariant 12. */
export function ghost_scheduled_consumed(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  r.scheduledConsumed++;
  if (r.scheduledConsumed > r.scheduledSet) {
    reportRootViolation(
      INV.zapOnce,
      `${root.kobj.name}: scheduled_root_to_zap consumed ${r.scheduledConsumed} times, set ${r.scheduledSet}`,
      {},
      kvm,
      root,
    );
  }
}

/**
 * E3-E4: tdp_mmu_schedule_zap_root() is about to queue the root's work item. Queuing it while an
 * earlier queue has not started running is the seed-002 hazard: the item runs once, one gifted
 * reference leaks (invariant 13).
 */
export function ghost_work_queued(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  if (r.workQueued > r.workStarted) {
    reportRootViolation(
      INV.workOnce,
      `${root.kobj.name}: work item queued again before the previous queue ran (a gifted reference leaks)`,
      { queued: r.workQueued, started: r.workStarted },
      kvm,
      root,
    );
  }
  r.workQueued++;
}

/** E3-E4: the worker started on the root. */
export function ghost_work_started(kvm: Kvm, root: KvmMmuPage): void {
  recordOf(kvm, root).workStarted++;
}

/** E3-E4: the worker put its reference. */
export function ghost_worker_put(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  r.workerPuts++;
  ghost_gift_put(kvm, root, INV.workOnce);
  if (r.workerPuts > r.workQueued) {
    reportRootViolation(INV.workOnce, `${root.kobj.name}: more worker puts than queued items`, {}, kvm, root);
  }
}

/** E3-E4: how many work items each root had queued, when a flush starts. */
export function ghost_work_snapshot(kvm: Kvm): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of ghostOf(kvm).roots.values()) m.set(r.root.pageId, r.workQueued);
  return m;
}

/**
 * E3-E4: every work item queued for the VM's roots (before `upto` was taken, if given) has run
 * and put its reference (invariant 13: before zap_all_fast returns and before uninit's WARNs).
 */
export function check_work_drained(kvm: Kvm, where: string, upto?: Map<number, number>): void {
  for (const r of ghostOf(kvm).roots.values()) {
    const want = upto === undefined ? r.workQueued : (upto.get(r.root.pageId) ?? 0);
    if (r.workerPuts < want) {
      reportRootViolation(
        INV.workOnce,
        `${where} returned while ${r.root.kobj.name} still has ${want - r.workerPuts} queued zap(s) that have not run`,
        { queued: r.workQueued, puts: r.workerPuts },
        kvm,
        r.root,
      );
    }
  }
}

// ---- tree inspection (ghost reads: plain fields, no ops) -------------------------------------

/** Every root of the VM: the ones kvm->pages still knows, plus every root the ghost has seen (freed ones too). */
function rootsOf(kvm: Kvm): KvmMmuPage[] {
  const out: KvmMmuPage[] = [];
  const seen = new Set<number>();
  for (const sp of kvm.pages.values()) {
    if (!sp.isRoot) continue;
    out.push(sp);
    seen.add(sp.pageId);
  }
  for (const r of ghostOf(kvm).roots.values()) if (!seen.has(r.root.pageId)) out.push(r.root);
  return out;
}

/** A present leaf of `root` mapping any gfn of [start, end), or null. */
function findLeaf(
  kvm: Kvm,
  sp: KvmMmuPage,
  start: number,
  end: number,
  depth = 0,
): { gfn: number; level: number; spte: number } | null {
  if (depth > 8 || sp.kobj.freed !== null) return null;
  const span = pagesPerHpage(kvm.geometry, sp.level);
  for (let i = 0; i < sp.spt.length; i++) {
    const v = sp.spt[i].v;
    if (!is_shadow_present_pte(v)) continue;
    const gfn = sp.gfn + i * span;
    if (gfn >= end || gfn + span <= start) continue;
    if (is_last_spte(v, sp.level)) return { gfn, level: sp.level, spte: v };
    const child = kvm.pages.get(spte_to_pfn(v));
    if (child === undefined) continue;
    const hit = findLeaf(kvm, child, start, end, depth + 1);
    if (hit !== null) return hit;
  }
  return null;
}

/** True when no SPTE of the root page itself is present (the tree below it is gone). */
function rootIsEmpty(root: KvmMmuPage): boolean {
  for (const s of root.spt) if (is_shadow_present_pte(s.v)) return false;
  return true;
}

// ---- point checks --------------------------------------------------------------------------

/** Start of a fast zap, in its write-locked section: remember the roots it must leave zapped. */
export function ghost_fast_zap_begin(kvm: Kvm): number {
  const g = ghostOf(kvm);
  const serial = g.fastZapSerial++;
  const set = new Set<KvmMmuPage>();
  for (const root of peekEntries(kvm.tdp_mmu_roots)) if (roleInvalid(root.role.v)) set.add(root);
  kvm.ghost.fastZapRoots.set(serial, set);
  return serial;
}

/**
 * Invariant 10: when kvm_mmu_zap_all_fast() returns, every root that was invalid at the end of its
 * write-locked section (the ones it invalidated, and the already-invalid ones it skipped) has no
 * present SPTE left, unless it is already freed.
 */
export function check_fast_zap_complete(kvm: Kvm, serial: number): void {
  const set = kvm.ghost.fastZapRoots.get(serial);
  kvm.ghost.fastZapRoots.delete(serial);
  if (set === undefined) return;
  for (const root of set) {
    if (root.kobj.freed !== null) continue;
    if (!rootIsEmpty(root)) {
      const leaf = findLeaf(kvm, root, 0, Number.MAX_SAFE_INTEGER);
      reportRootViolation(
        INV.fastZapComplete,
        `kvm_mmu_zap_all_fast returned but ${root.kobj.name}, invalidated by it, still maps ${leaf ? `gfn ${leaf.gfn} at level ${leaf.level}` : "page tables"}`,
        { leaf },
        kvm,
        root,
      );
    }
  }
}

/**
 * Invariant 10, weak form: when a memslot deletion's fast zap is done, no root that is not freed
 * maps a gfn of the deleted slot.
 */
export function check_slot_unmapped(kvm: Kvm, start: number, end: number): void {
  for (const root of rootsOf(kvm)) {
    if (root.kobj.freed !== null) continue;
    const leaf = findLeaf(kvm, root, start, end);
    if (leaf !== null) {
      reportRootViolation(
        INV.fastZapComplete,
        `memslot [${start}, ${end}) was deleted but ${root.kobj.name} still maps gfn ${leaf.gfn} (level ${leaf.level})`,
        { leaf },
        kvm,
        root,
      );
    }
  }
}

/**
 * Invariant 11: when invalidate_range_start() for [start, end) returns, no present leaf SPTE maps
 * a gfn of the range in any root that is not freed (on the list, valid or invalid, or unlinked and
 * waiting for its grace period).
 */
export function check_notifier_complete(kvm: Kvm, start: number, end: number): void {
  for (const root of rootsOf(kvm)) {
    if (root.kobj.freed !== null) continue;
    const leaf = findLeaf(kvm, root, start, end);
    if (leaf !== null) {
      reportInvariant(
        INV.notifierComplete,
        `invalidate_range_start [${start}, ${end}) returned but ${root.kobj.name} still maps gfn ${leaf.gfn} (level ${leaf.level}, pfn ${spte_to_pfn(leaf.spte)})`,
        { ...rootDetails(root), start, end, leaf },
      );
      return;
    }
  }
}

/** An invalidator is about to mark roots invalid; its request to every vCPU has not returned yet. */
export function ghost_invalidation_begin(kvm: Kvm): void {
  ghostOf(kvm).invalidationsInFlight++;
}

/** The invalidator's kvm_make_all_cpus_request() returned. */
export function ghost_invalidation_end(kvm: Kvm): void {
  ghostOf(kvm).invalidationsInFlight--;
}

/**
 * Invariant 8 at guest entry: the vCPU's root must be valid, except while an invalidator is
 * between setting `invalid` and the return of its kick-and-wait request (the kick will bring the
 * vCPU out again, and nothing is zapped before that).
 */
export function check_vcpu_entry(vcpu: Vcpu): void {
  const root = vcpu.root;
  if (root === null) {
    reportInvariant(
      INV.noInvalidRootEntered,
      `vCPU ${vcpu.vcpu_id} entered the guest with no root loaded`,
      {},
    );
    return;
  }
  const inFlight = ghostOf(vcpu.kvm).invalidationsInFlight > 0;
  if ((roleInvalid(root.role.v) && !inFlight) || root.kobj.freed !== null) {
    reportRootViolation(
      INV.noInvalidRootEntered,
      `vCPU ${vcpu.vcpu_id} entered the guest on ${root.kobj.name}, which is ${root.kobj.freed ? "freed" : "invalid"}`,
      { vcpu: vcpu.vcpu_id },
      vcpu.kvm,
      root,
    );
  }
}

/**
 * Invariant 8 after kvm_make_all_cpus_request() returns: no vCPU is still in the guest on an
 * invalid root (the request kicked it out, and it cannot re-enter without seeing the request).
 */
export function check_no_vcpu_in_guest_on_invalid_root(kvm: Kvm): void {
  for (const v of kvm.vcpus) {
    if (v.inGuest && v.root !== null && roleInvalid(v.root.role.v)) {
      reportRootViolation(
        INV.noInvalidRootEntered,
        `vCPU ${v.vcpu_id} is still in the guest on invalid ${v.root.kobj.name} after the request was made`,
        { vcpu: v.vcpu_id },
        kvm,
        v.root,
      );
    }
  }
}

/**
 * Invariant 14, after kvm_mmu_uninit_tdp_mmu() (rcu_barrier included): the root list is empty and
 * no root or page-table page of the VM is still allocated.
 */
export function check_teardown_clean(kvm: Kvm): void {
  const listed = peekEntries(kvm.tdp_mmu_roots);
  const live = new Set<string>();
  for (const sp of kvm.pages.values()) if (sp.kobj.freed === null) live.add(sp.kobj.name);
  for (const root of rootsOf(kvm)) if (root.kobj.freed === null) live.add(root.kobj.name);
  if (listed.length > 0 || live.size > 0) {
    reportInvariant(
      INV.teardownClean,
      `VM torn down with ${listed.length} root(s) on tdp_mmu_roots and ${live.size} live TDP page(s): ${[...live].slice(0, 6).join(", ")}`,
      { listed: listed.map((r) => r.kobj.name), live: [...live] },
    );
  }
}

/**
 * L1, at the end of a run (all vCPUs done with their requests): every invalid root is freed, or on
 * its way (free callback or queued zap pending), or still referenced by a vCPU that has a request
 * pending to drop it.
 */
export function check_invalid_roots_freed(kvm: Kvm): void {
  for (const root of rootsOf(kvm)) {
    if (root.kobj.freed !== null || !roleInvalid(root.role.v)) continue;
    // On its way: the free callback is queued, or (E3-E4) a queued zap still holds the gift.
    const r = recordOf(kvm, root);
    if (r.freeQueued) continue;
    if (r.workerPuts < r.workQueued) continue;
    const holder = kvm.vcpus.find((v) => v.root === root || v.prev_roots.includes(root));
    if (holder !== undefined && holder.requests.v !== 0) continue;
    reportRootViolation(
      INV.invalidRootsFreed,
      `${root.kobj.name} is invalid and still allocated at the end of the run${holder ? ` (held by vCPU ${holder.vcpu_id}, no request pending)` : ""}`,
      {},
      kvm,
      root,
    );
  }
}

/**
 * L2, for walkers that yield: between two yields of one walk the walk moved forward by at least
 * one last-level gfn. `from` is the gfn the previous yield restarted at, `to` the next one.
 */
export function check_yield_progress(kvm: Kvm, what: string, yieldedGfn: number, nextGfn: number): void {
  if (nextGfn === yieldedGfn) {
    reportInvariant(INV.yieldProgress, `${what} yielded twice at gfn ${nextGfn} without making progress`, {
      gfn: nextGfn,
      vm: kvm.kobj.name,
    });
  }
}

// ---- state checks after every step -----------------------------------------------------------

function anyHolds(lockId: number, modes: readonly string[]): boolean {
  for (const k of machine().ktasks) {
    for (const h of k.held) if (h.lock.id === lockId && modes.includes(h.mode)) return true;
  }
  return false;
}

function checkRoot(kvm: Kvm, root: KvmMmuPage): void {
  const r = recordOf(kvm, root);
  if (!r.published && root.link.onList) r.published = true;
  const count = root.tdp_mmu_root_count.v;
  const invalid = roleInvalid(root.role.v);
  const f = kvm.features;

  // 1. The count never goes negative (refcount_t also WARNs and saturates).
  if (count < 0) {
    reportRootViolation(INV.refcountNonneg, `${root.kobj.name} refcount is ${count}`, {}, kvm, root);
  }

  if (r.published) {
    // 2. No get from 0; the only 0 -> n is E3's put path handing the defunct root to the worker.
    if (r.lastCount === 0 && count > 0) {
      if (f.defunctRoots && invalid && !r.resurrected && count === 1) {
        r.resurrected = true;
      } else {
        reportRootViolation(
          INV.noResurrect,
          `${root.kobj.name} refcount went from 0 back to ${count}`,
          { invalid },
          kvm,
          root,
        );
      }
    }
    // 3. A referenced root stays on the list; a root still on the list is not freed.
    if (count > 0 && !root.link.onList) {
      reportRootViolation(
        INV.listMembership,
        `${root.kobj.name} has refcount ${count} but is off tdp_mmu_roots`,
        {},
        kvm,
        root,
      );
    }
    if (root.link.onList && root.kobj.freed !== null) {
      reportRootViolation(
        INV.listMembership,
        `${root.kobj.name} was freed while on tdp_mmu_roots`,
        {},
        kvm,
        root,
      );
    }
    // 7. E4+: the TDP MMU's reference keeps every valid root above 0. E3: a valid root is never unlinked.
    if (f.persistentRoots && count === 0 && !invalid) {
      reportRootViolation(
        INV.finalPutInvalid,
        `the last reference to valid ${root.kobj.name} was put`,
        {},
        kvm,
        root,
      );
    }
    if (f.defunctRoots && !root.link.onList && !invalid) {
      reportRootViolation(INV.finalPutInvalid, `valid ${root.kobj.name} was unlinked`, {}, kvm, root);
    }
  }

  // 6. invalid goes 0 -> 1 only, under the write mmu_lock (or teardown, or E3's put path).
  if (r.lastInvalid && !invalid) {
    reportRootViolation(INV.invalidMonotone, `${root.kobj.name} became valid again`, {}, kvm, root);
  } else if (!r.lastInvalid && invalid) {
    const teardown = kvm.users_count.v === 0 || kvm.created_vcpus === 0;
    const lockOk = anyHolds(kvm.mmu_lock.id, f.defunctRoots ? ["write", "read"] : ["write"]);
    if (!teardown && !lockOk) {
      reportRootViolation(
        INV.lockDiscipline,
        `${root.kobj.name} was marked invalid without holding mmu_lock${f.defunctRoots ? "" : " for write"}`,
        {},
        kvm,
        root,
      );
    }
  }
  r.lastCount = count;
  r.lastInvalid = invalid;
}

function checkVcpuRefs(kvm: Kvm): void {
  for (const v of kvm.vcpus) {
    for (const root of [v.root, ...v.prev_roots]) {
      if (root !== null && root.kobj.freed !== null) {
        reportRootViolation(
          INV.noUafRoots,
          `vCPU ${v.vcpu_id} still holds ${root.kobj.name}, which was freed`,
          { vcpu: v.vcpu_id },
          kvm,
          root,
        );
      }
    }
  }
}

function checkListDiscipline(kvm: Kvm): void {
  const g = ghostOf(kvm);
  const snap = peekEntries(kvm.tdp_mmu_roots)
    .map((r) => r.pageId)
    .join(",");
  if (snap === g.listSnapshot) return;
  g.listSnapshot = snap;
  // 15. The list changes only with tdp_mmu_pages_lock, or with mmu_lock held for write.
  if (!anyHolds(kvm.tdp_mmu_pages_lock.id, ["spin"]) && !anyHolds(kvm.mmu_lock.id, ["write"])) {
    reportInvariant(
      INV.lockDiscipline,
      `tdp_mmu_roots changed with neither tdp_mmu_pages_lock nor mmu_lock (write) held`,
      { list: snap },
    );
  }
}

/** The state checks, once. Exposed for tests and for engines that check on demand. */
export function checkRootsNow(kvm: Kvm): void {
  for (const root of rootsOf(kvm)) checkRoot(kvm, root);
  checkVcpuRefs(kvm);
  checkListDiscipline(kvm);
}

/** Register the root invariants' state checks with the running engine (call from program setup). */
export function registerInvariants(kvm: Kvm): void {
  const g = ghostOf(kvm);
  g.listSnapshot = peekEntries(kvm.tdp_mmu_roots)
    .map((r) => r.pageId)
    .join(",");
  host().addCheck("tdp-mmu-roots", () => checkRootsNow(kvm));
}
