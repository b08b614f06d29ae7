import type { Gen } from "../engine/op.js";
import { type Atomic, READ_ONCE } from "../kernel/atomic.js";
import { rcu_dereference_check } from "../kernel/rcu.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import { pagesPerHpage } from "./kvm.js";
import { roleAsId } from "./role.js";
import { is_last_spte, is_shadow_present_pte, spte_to_pfn } from "./spte.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/** PT64_ROOT_MAX_LEVEL. */
export const PT64_ROOT_MAX_LEVEL = 5;
/** PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_1G. */
export const PG_LEVEL_4K = 1;
export const PG_LEVEL_2M = 2;
export const PG_LEVEL_1G = 3;
/** KVM_MAX_HUGEPAGE_LEVEL. */
export const KVM_MAX_HUGEPAGE_LEVEL = PG_LEVEL_1G;

/**
 * Pages freed through tdp_mmu_free_sp(), per VM. A non-leaf SPTE names its
 * child by page id; when a buggy path frees a page that is still linked, the
 * walker must still reach *that* page object so that its access is reported as
 * a use-after-free by the kernel primitives, instead of silently finding nothing.
 */
const freedPages = new WeakMap<Kvm, Map<number, KvmMmuPage>>();

/** Remember a freed page so that dangling SPTEs still resolve to it (see freedPages). */
export function remember_freed_sp(kvm: Kvm, sp: KvmMmuPage): void {
  let m = freedPages.get(kvm);
  if (m === undefined) {
    m = new Map();
    freedPages.set(kvm, m);
  }
  m.set(sp.pageId, sp);
}

/** Pages freed through tdp_mmu_free_sp(), for observers that list every page the VM ever had. */
export function freedSps(kvm: Kvm): Iterable<KvmMmuPage> {
  return freedPages.get(kvm)?.values() ?? [];
}

/** The page a page id names: live (kvm.pages) or already freed. */
export function sp_by_id(kvm: Kvm, pageId: number): KvmMmuPage | undefined {
  return kvm.pages.get(pageId) ?? freedPages.get(kvm)?.get(pageId);
}

/** SPTE_INDEX(): which entry of a table at `level` maps `gfn`. */
export function SPTE_INDEX(kvm: Kvm, gfn: number, level: number): number {
  return Math.floor(gfn / pagesPerHpage(kvm.geometry, level)) % kvm.geometry.ptesPerTable;
}

/** gfn_round_for_level(): the first gfn mapped by the SPTE at `level` covering `gfn`. */
export function gfn_round_for_level(kvm: Kvm, gfn: number, level: number): number {
  return gfn - (gfn % pagesPerHpage(kvm.geometry, level));
}

/**
 * kvm_tdp_mmu_read_spte() (tdp_iter.h, v5.13+): READ_ONCE(*rcu_dereference(sptep)). Page tables
 * are freed through RCU, so every dereference must be inside an RCU read-side section.
 */
export function* kvm_tdp_mmu_read_spte(sptep: Atomic): Gen<number> {
  rcu_dereference_check(`sptep ${sptep.name}`);
  return yield* READ_ONCE(sptep);
}

/**
 * spte_to_child_pt() (tdp_iter.c): the page table a present non-leaf SPTE points at, or null.
 * Here the SPTE's pfn field is the child's page id (make_nonleaf_spte).
 */
export function spte_to_child_pt(kvm: Kvm, spte: number, level: number): KvmMmuPage | null {
  if (!is_shadow_present_pte(spte) || is_last_spte(spte, level)) return null;
  const child = sp_by_id(kvm, spte_to_pfn(spte));
  if (child === undefined) throw new Error(`non-leaf SPTE names page #${spte_to_pfn(spte)}, never allocated`);
  return child;
}

/**
 * struct tdp_iter (tdp_iter.h, v5.10+; `yielded` since 5.17): a pre-order walk
 * over one root's paging structure. `sptep` is the SPTE word itself; `old_spte`
 * is the snapshot read from it. The fields mirror the kernel's one to one;
 * `pt_path[level - 1]` is the page table the walk is in at each level.
 */
export class TdpIter {
  next_last_level_gfn = 0;
  yielded_gfn = 0;
  readonly pt_path: (KvmMmuPage | null)[] = new Array(PT64_ROOT_MAX_LEVEL).fill(null);
  sptep: Atomic = null as unknown as Atomic;
  gfn = 0;
  root_level = 0;
  min_level = 0;
  level = 0;
  as_id = 0;
  old_spte = 0;
  valid = false;
  yielded = false;
  /** The root being walked (the kernel keeps only pt_path[root_level - 1]). */
  root: KvmMmuPage | null = null;

  constructor(readonly kvm: Kvm) {}

  /** sptep_to_sp(iter->sptep): the page table holding the current SPTE. */
  get sp(): KvmMmuPage {
    return this.pt_path[this.level - 1]!;
  }
}

/** tdp_iter_refresh_sptep() (tdp_iter.c): point at the SPTE for (gfn, level) and re-read it. */
function* tdp_iter_refresh_sptep(iter: TdpIter): Gen<void> {
  const pt = iter.pt_path[iter.level - 1]!;
  iter.sptep = pt.spt[SPTE_INDEX(iter.kvm, iter.gfn, iter.level)];
  iter.old_spte = yield* kvm_tdp_mmu_read_spte(iter.sptep);
}

/**
 * tdp_iter_restart() (tdp_iter.c, v5.13+): go back to the root and walk towards
 * next_last_level_gfn again. Called after a yield: no pointer into a lower page
 * table survives the yield, only the root, which the walker holds a reference on.
 */
export function* tdp_iter_restart(iter: TdpIter): Gen<void> {
  iter.yielded = false;
  iter.yielded_gfn = iter.next_last_level_gfn;
  iter.level = iter.root_level;
  iter.gfn = gfn_round_for_level(iter.kvm, iter.next_last_level_gfn, iter.level);
  yield* tdp_iter_refresh_sptep(iter);
  iter.valid = true;
}

/** tdp_iter_start() (tdp_iter.c, v6.x): begin a walk of `root` towards `next_last_level_gfn`. */
export function* tdp_iter_start(
  iter: TdpIter,
  root: KvmMmuPage,
  min_level: number,
  next_last_level_gfn: number,
): Gen<void> {
  const root_level = root.level;
  if (WARN_ON_ONCE(root_level < 1 || root_level > PT64_ROOT_MAX_LEVEL, "bad root level")) {
    iter.valid = false;
    return;
  }
  iter.root = root;
  iter.next_last_level_gfn = next_last_level_gfn;
  iter.root_level = root_level;
  iter.min_level = min_level;
  iter.pt_path.fill(null);
  iter.pt_path[root_level - 1] = root;
  // smm never changes in a page's role word: a plain read of an immutable field.
  iter.as_id = roleAsId(root.role.v);
  yield* tdp_iter_restart(iter);
}

/** try_step_down() (tdp_iter.c): re-read the SPTE and step into the table it points at. */
function* try_step_down(iter: TdpIter): Gen<boolean> {
  if (iter.level === iter.min_level) return false;
  // Re-read so the walk never enters a table that was unlinked since the last read.
  iter.old_spte = yield* kvm_tdp_mmu_read_spte(iter.sptep);
  const child = spte_to_child_pt(iter.kvm, iter.old_spte, iter.level);
  if (child === null) return false;
  iter.level--;
  iter.pt_path[iter.level - 1] = child;
  iter.gfn = gfn_round_for_level(iter.kvm, iter.next_last_level_gfn, iter.level);
  yield* tdp_iter_refresh_sptep(iter);
  return true;
}

/** try_step_side() (tdp_iter.c): the next entry of the same table, if any. */
function* try_step_side(iter: TdpIter): Gen<boolean> {
  const kvm = iter.kvm;
  const idx = SPTE_INDEX(kvm, iter.gfn, iter.level);
  if (idx === kvm.geometry.ptesPerTable - 1) return false;
  iter.gfn += pagesPerHpage(kvm.geometry, iter.level);
  iter.next_last_level_gfn = iter.gfn;
  iter.sptep = iter.pt_path[iter.level - 1]!.spt[idx + 1];
  iter.old_spte = yield* kvm_tdp_mmu_read_spte(iter.sptep);
  return true;
}

/** try_step_up() (tdp_iter.c): back to the parent table (its entry was visited already). */
function* try_step_up(iter: TdpIter): Gen<boolean> {
  if (iter.level === iter.root_level) return false;
  iter.level++;
  iter.gfn = gfn_round_for_level(iter.kvm, iter.gfn, iter.level);
  yield* tdp_iter_refresh_sptep(iter);
  return true;
}

/**
 * tdp_iter_next() (tdp_iter.c, v5.17+): the next SPTE in pre-order. After a
 * yield the walk restarts from the root; otherwise down, else sideways, else up
 * and sideways, else the walk is over.
 */
export function* tdp_iter_next(iter: TdpIter): Gen<void> {
  if (iter.yielded) {
    yield* tdp_iter_restart(iter);
    return;
  }
  if (yield* try_step_down(iter)) return;
  do {
    if (yield* try_step_side(iter)) return;
  } while (yield* try_step_up(iter));
  iter.valid = false;
}

/**
 * A loop body, run on the iterator's current SPTE. It is either a generator
 * function (when it makes accesses) or a plain function; returning "break"
 * leaves the loop, anything else goes on to the next SPTE (`continue`).
 */
export type TdpLoopBody = (iter: TdpIter) => unknown;

function isGen(x: unknown): x is Gen<unknown> {
  return typeof x === "object" && x !== null && typeof (x as Gen<unknown>).next === "function";
}

function* runBody(body: TdpLoopBody, iter: TdpIter): Gen<unknown> {
  const r = body(iter);
  return isGen(r) ? yield* r : r;
}

/**
 * for_each_tdp_pte_min_level() (tdp_iter.h): run `body` on every SPTE mapping
 * [start, end) at levels >= min_level, in pre-order. The condition is the
 * kernel's: iter.valid && iter.gfn < end, evaluated before every step.
 */
export function* for_each_tdp_pte_min_level(
  iter: TdpIter,
  root: KvmMmuPage,
  min_level: number,
  start: number,
  end: number,
  body: TdpLoopBody,
): Gen<void> {
  for (yield* tdp_iter_start(iter, root, min_level, start); iter.valid && iter.gfn < end; ) {
    if ((yield* runBody(body, iter)) === "break") return;
    yield* tdp_iter_next(iter);
  }
}

/** for_each_tdp_pte() (tdp_iter.h): every SPTE down to 4K. */
export function* for_each_tdp_pte(
  iter: TdpIter,
  root: KvmMmuPage,
  start: number,
  end: number,
  body: TdpLoopBody,
): Gen<void> {
  yield* for_each_tdp_pte_min_level(iter, root, PG_LEVEL_4K, start, end, body);
}

/** tdp_root_for_each_pte() (tdp_mmu.c): every SPTE of `root` mapping [start, end). */
export function* tdp_root_for_each_pte(
  iter: TdpIter,
  root: KvmMmuPage,
  start: number,
  end: number,
  body: TdpLoopBody,
): Gen<void> {
  yield* for_each_tdp_pte(iter, root, start, end, body);
}

/** tdp_root_for_each_leaf_pte() (tdp_mmu.c): only the present leaf SPTEs. */
export function* tdp_root_for_each_leaf_pte(
  iter: TdpIter,
  root: KvmMmuPage,
  start: number,
  end: number,
  body: TdpLoopBody,
): Gen<void> {
  yield* for_each_tdp_pte(iter, root, start, end, function* (it) {
    if (!is_shadow_present_pte(it.old_spte) || !is_last_spte(it.old_spte, it.level)) return undefined;
    return yield* runBody(body, it);
  });
}
