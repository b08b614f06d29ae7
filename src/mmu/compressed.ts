import { type BulkProfile, bulkAccess, ProfileRecorder, recordProfile } from "../engine/bulk.js";
import type { Gen } from "../engine/op.js";
import { Atomic } from "../kernel/atomic.js";
import { machine } from "../kernel/machine.js";
import { call_rcu_summarised } from "../kernel/rcu.js";
import { note_spte_changed } from "./invariants/bounded_hold.js";
import { ghost_sp_linked } from "./invariants/pages.js";
import { lazy_sp, pagesPerHpage } from "./kvm.js";
import { ROLE } from "./role.js";
import { make_leaf_spte, make_nonleaf_spte } from "./spte.js";
import { tdp_mmu_free_sp_rcu_callback } from "./tdp_mmu_spte.js";
import { runningVcpus } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * Compressed page tables: how a timed run holds a fully populated 64 TiB guest (2^34 4K leaves) in a
 * few hundred MiB and tears it down in seconds, with the same virtual times and event counts as the
 * materialised tree would give.
 *
 * Representation. A tree populated before the run is built lazily: a page's header exists once its
 * parent's SPTE words do, and its own 512 SPTE words are built the first time anything reads them
 * (so a walk that only visits the upper levels never builds the lower ones). The values built are
 * the ones populate() writes at setup time, so a page looks the same whichever way it was made.
 *
 * Time. A page that was never built is *pristine*: nobody has looked into its subtree, so every
 * pristine full subtree of a level is the same. handle_removed_pt() on such a page runs for real the
 * first time (per level, sharing mode and number of running vCPUs), under a ProfileRecorder; each
 * further one is one bulk access standing for the recorded block (src/engine/bulk.ts), whose effects
 * on the VM's counters are applied as the recorded deltas. Its page tables are freed by one RCU
 * callback that frees the subtree's top page for real and the rest as one bulk access.
 *
 * Why it is exact: a removed subtree is unreachable (its parent SPTE was already changed), the
 * remover holds mmu_lock and is inside an RCU read-side section, and handle_removed_pt() has no yield
 * point, so nothing else can observe the block or change how it goes. A recording that waited,
 * spawned or chose is not reused. The test compressed.sim.test.ts compares a materialised and a
 * compressed 1 GiB teardown step for step.
 */

type SubtreeState = "pristine" | "built" | "summarised";

interface Subtree {
  readonly leaves: number;
  state: SubtreeState;
}

interface Summary {
  readonly profile: BulkProfile;
  readonly delta: readonly number[];
}

interface Summaries {
  readonly zap: Map<string, Summary>;
  free: Summary | null;
  /** Blocks summarised so far. */
  blocks: number;
}

const subtrees = new WeakMap<KvmMmuPage, Subtree>();
const summaries = new WeakMap<Kvm, Summaries>();

function summariesOf(kvm: Kvm): Summaries {
  let s = summaries.get(kvm);
  if (s === undefined) {
    s = { zap: new Map(), free: null, blocks: 0 };
    summaries.set(kvm, s);
  }
  return s;
}

/** Leaves a full subtree under a page at `level` maps. */
function capacity(kvm: Kvm, level: number): number {
  return kvm.geometry.ptesPerTable ** level;
}

/** Page tables (the top one included) of a subtree at `level` whose first `leaves` leaves are mapped. */
export function subtreePages(kvm: Kvm, level: number, leaves: number): number {
  if (leaves <= 0) return 0;
  if (level === 1) return 1;
  const per = capacity(kvm, level - 1);
  const full = Math.floor(leaves / per);
  const rest = leaves - full * per;
  return 1 + full * subtreePages(kvm, level - 1, per) + subtreePages(kvm, level - 1, rest);
}

/** A page of the compressed tree whose SPTE words are built on first use. */
function lazyChild(kvm: Kvm, parent: KvmMmuPage, gfn: number, ptep: Atomic, leaves: number): KvmMmuPage {
  const role = ROLE.level.set(parent.role.v, parent.level - 1);
  const sp = lazy_sp(kvm, role, gfn, ptep, (me) => build(kvm, me));
  subtrees.set(sp, { leaves, state: "pristine" });
  ghost_sp_linked(kvm, sp);
  return sp;
}

/** Build the SPTE words of a lazy page: what populate() would have written. */
function build(kvm: Kvm, sp: KvmMmuPage): Atomic[] {
  const sub = subtrees.get(sp)!;
  if (sub.state === "summarised") {
    throw new Error(`${sp.kobj.name} was torn down as a summarised block; its SPTEs no longer exist`);
  }
  sub.state = "built";
  return fill(kvm, sp, sub.leaves);
}

/** SPTE words for `sp` mapping its first `leaves` leaves, with lazy children below level 1. */
function fill(kvm: Kvm, sp: KvmMmuPage, leaves: number): Atomic[] {
  const n = kvm.geometry.ptesPerTable;
  const per = pagesPerHpage(kvm.geometry, sp.level);
  const spt: Atomic[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const gfn = sp.gfn + i * per;
    const mine = Math.min(Math.max(leaves - i * per, 0), per);
    const word = new Atomic(`spte[${i}]`, 0, sp.kobj);
    spt[i] = word;
    if (mine === 0) continue;
    if (sp.level === 1) {
      word.v = make_leaf_spte({ pfn: 0x10000 + gfn, level: 1, writable: true, accessed: true, dirty: false });
    } else {
      const child = lazyChild(kvm, sp, gfn, word, mine);
      word.v = make_nonleaf_spte(child.pageId);
    }
  }
  return spt;
}

/**
 * Populate `root` with 4K leaves for gfns [0, leaves) at setup time, compressed: the root's own
 * SPTEs are written now, every page below is lazy. Accounts the page tables the tree holds, as
 * populate() does one page at a time.
 */
export function populate_compressed(kvm: Kvm, root: KvmMmuPage, leaves: number): void {
  if (!(Number.isInteger(leaves) && leaves >= 0 && leaves <= capacity(kvm, root.level))) {
    throw new RangeError(`populate_compressed: ${leaves} leaves do not fit a level-${root.level} root`);
  }
  const n = kvm.geometry.ptesPerTable;
  const per = pagesPerHpage(kvm.geometry, root.level);
  for (let i = 0; i < n; i++) {
    const mine = Math.min(Math.max(leaves - i * per, 0), per);
    if (mine === 0) continue;
    const word = root.spt[i];
    const child = lazyChild(kvm, root, root.gfn + i * per, word, mine);
    word.v = make_nonleaf_spte(child.pageId);
  }
  kvm.tdp_mmu_pages.v += subtreePages(kvm, root.level, leaves) - (leaves > 0 ? 1 : 0);
}

/**
 * Whether `pt` heads a subtree nobody has looked into (handle_removed_pt may summarise it). A page on
 * possible_nx_huge_pages is not: its removal takes it off that list (tdp_mmu_unlink_sp()), a state
 * change a bulk copy of another page's teardown would not make.
 */
export function is_pristine_subtree(pt: KvmMmuPage): boolean {
  return subtrees.get(pt)?.state === "pristine" && !pt.nx_huge_page_disallowed;
}

/** Blocks summarised in this VM so far (for reports and tests). */
export function summarisedBlocks(kvm: Kvm): number {
  return summariesOf(kvm).blocks;
}

/** The VM counters a summarised block must move as the real block would. */
function counters(kvm: Kvm): number[] {
  const s = kvm.stats;
  return [
    s.sptesZapped,
    s.pagesFreed,
    s.remoteTlbFlushes,
    s.rootsFreed,
    kvm.tdp_mmu_pages.v,
    kvm.tlb.v,
    machine().tlbFlushes,
  ];
}

function applyDelta(kvm: Kvm, d: readonly number[], times: number): void {
  const s = kvm.stats;
  s.sptesZapped += d[0] * times;
  s.pagesFreed += d[1] * times;
  s.remoteTlbFlushes += d[2] * times;
  s.rootsFreed += d[3] * times;
  kvm.tdp_mmu_pages.v += d[4] * times;
  kvm.tlb.v += d[5] * times;
  machine().tlbFlushes += d[6] * times;
}

function delta(after: readonly number[], before: readonly number[]): number[] {
  return after.map((v, i) => v - before[i]);
}

/** Run `real` under a recorder; return its summary, or null if it cannot stand for copies. */
function* recorded(kvm: Kvm, real: Gen<void>): Gen<Summary | null> {
  const rec = new ProfileRecorder();
  const before = counters(kvm);
  yield* recordProfile(real, rec);
  return rec.invalid === null ? { profile: rec.profile(), delta: delta(counters(kvm), before) } : null;
}

/**
 * handle_removed_pt() on a pristine subtree (the remover's side of the compressed tree): the first
 * full subtree of its kind is removed for real by `real` and recorded; later ones are one bulk access.
 */
export function* handle_removed_pristine_pt(
  kvm: Kvm,
  pt: KvmMmuPage,
  shared: boolean,
  real: () => Gen<void>,
): Gen<void> {
  const sub = subtrees.get(pt)!;
  const full = sub.leaves === capacity(kvm, pt.level);
  // Flush prices depend on the vCPUs in guest mode, so a recording is only reused with as many.
  const key = `L${pt.level}|${shared ? "shared" : "exclusive"}|${runningVcpus(kvm)}`;
  const s = summariesOf(kvm);
  const known = full ? s.zap.get(key) : undefined;
  if (known === undefined) {
    const summary = yield* recorded(kvm, real());
    if (full && summary !== null) s.zap.set(key, summary);
    return;
  }
  sub.state = "summarised";
  const pages = subtreePages(kvm, pt.level, sub.leaves);
  // Every entry of a full subtree is present, so the recorded teardown changed each of them.
  note_spte_changed(kvm, `the ${pages} page tables under ${pt.kobj.name}`, pages * kvm.geometry.ptesPerTable);
  yield bulkAccess(
    known.profile,
    1,
    pt.kobj.id,
    "handle_removed_pt",
    `L${pt.level} subtree, ${sub.leaves} leaves`,
  );
  s.blocks++;
  applyDelta(kvm, known.delta, 1);
  call_rcu_summarised(
    pt.rcu_head,
    () => free_summarised_subtree(kvm, pt, pages),
    `tdp_mmu_free_sp_rcu_callback(${pt.kobj.name} + ${pages - 1} below)`,
  );
}

/** The freeing callback of a summarised subtree: its top page for real, the rest as one bulk access. */
function* free_summarised_subtree(kvm: Kvm, pt: KvmMmuPage, pages: number): Gen<void> {
  const s = summariesOf(kvm);
  const summary = yield* recorded(kvm, tdp_mmu_free_sp_rcu_callback(pt, kvm));
  if (summary === null) throw new Error(`freeing ${pt.kobj.name} waited or spawned; cannot summarise`);
  s.free ??= summary;
  if (pages <= 1) return;
  yield bulkAccess(
    s.free.profile,
    pages - 1,
    pt.kobj.id,
    "tdp_mmu_free_sp_rcu_callback",
    `${pages - 1} page tables`,
  );
  s.blocks++;
  applyDelta(kvm, s.free.delta, pages - 1);
}
