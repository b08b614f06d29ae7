import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import { kzalloc } from "../kernel/alloc.js";
import { Atomic } from "../kernel/atomic.js";
import { RcuHead } from "../kernel/rcu.js";
import { ListHead } from "../kernel/rculist.js";
import { Refcount } from "../kernel/refcount.js";
import { RwLock } from "../kernel/rwlock.js";
import { op, Shared } from "../kernel/shared.js";
import { Mutex, Spinlock } from "../kernel/spinlock.js";
import { WorkStruct } from "../kernel/workqueue.js";
import type { Features } from "./features.js";
import { ROLE } from "./role.js";
import type { Geometry, Kvm, KvmMmuPage, Memslot, Vcpu } from "./types.js";

export interface VmConfig {
  readonly features: Features;
  readonly rootLevel?: 4 | 5;
  /** Entries per page table: 512 on real hardware, 2-4 for exhaustive checking. */
  readonly ptesPerTable?: number;
  /** Guest frames covered by memslot 0 (default: the whole address space up to hostMaxGfn). */
  readonly memslotPages?: number;
  /** Host MAXPHYADDR in frames (Geometry.hostMaxGfn; default: the page tables' reach). */
  readonly hostMaxGfn?: number;
  /** The guest's MAXPHYADDR in frames (Geometry.guestMaxGfn; default: hostMaxGfn). */
  readonly guestMaxGfn?: number;
  /**
   * kvm.nx_huge_pages=on (the iTLB multihit mitigation) with this nx_huge_pages_recovery_ratio
   * (the kernel's default is 60); absent: the mitigation is off.
   */
  readonly nxHugePages?: { readonly recoveryRatio: number };
}

export function geometryFor(
  rootLevel: 4 | 5,
  ptesPerTable: number,
  widths: { readonly hostMaxGfn?: number; readonly guestMaxGfn?: number } = {},
): Geometry {
  if (!Number.isInteger(ptesPerTable) || ptesPerTable < 2 || ptesPerTable > 512) {
    throw new RangeError(`ptesPerTable must be an integer in [2, 512], got ${ptesPerTable}`);
  }
  const maxGfn = ptesPerTable ** rootLevel;
  const hostMaxGfn = widths.hostMaxGfn ?? maxGfn;
  const guestMaxGfn = widths.guestMaxGfn ?? hostMaxGfn;
  for (const [name, v] of [
    ["hostMaxGfn", hostMaxGfn],
    ["guestMaxGfn", guestMaxGfn],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > maxGfn)
      throw new RangeError(`${name} must be an integer in [1, ${maxGfn}] (the page tables' reach), got ${v}`);
  }
  return { rootLevel, ptesPerTable, maxGfn, hostMaxGfn, guestMaxGfn };
}

/**
 * kvm_mmu_max_gfn() (mmu.h, 86931ff7207b, 5.18-rc5; kvm_mmu_max_gfn_host() in the posted patch):
 * the largest gfn an SPTE may map, from the host's MAXPHYADDR, not the guest's. Inclusive.
 */
export function kvm_mmu_max_gfn(kvm: Kvm): number {
  return kvm.geometry.hostMaxGfn - 1;
}

/**
 * kvm_arch_prepare_memory_region() (x86.c), the part 86931ff7207b (5.18-rc5) added: creating or
 * moving a memslot whose last gfn is past kvm_mmu_max_gfn() fails with -EINVAL
 * (features.memslotMaxGfnCheck). Before it such a slot was accepted. Returns 0 or -EINVAL.
 */
export function kvm_arch_prepare_memory_region(kvm: Kvm, slot: Memslot): number {
  if (kvm.features.memslotMaxGfnCheck && slot.base_gfn + slot.npages - 1 > kvm_mmu_max_gfn(kvm))
    return EINVAL;
  return 0;
}

/** -EINVAL. */
export const EINVAL = -22;

/** KVM_PAGES_PER_HPAGE(level): guest frames one SPTE at `level` maps. */
export function pagesPerHpage(g: Geometry, level: number): number {
  return g.ptesPerTable ** (level - 1);
}

/** The gfn -> pfn the host maps by default: distinct, so a stale SPTE is recognisable. */
export function defaultHostPfn(gfn: number): number {
  return 0x10000 + gfn;
}

/** kvm_create_vm() + kvm_mmu_init_tdp_mmu(): the state a VM starts with. Runs in program setup. */
export function kvm_create_vm(cfg: VmConfig): Kvm {
  const g = geometryFor(cfg.rootLevel ?? 4, cfg.ptesPerTable ?? 512, cfg);
  const kobj = kzalloc("kvm", "kvm");
  const slotPages = cfg.memslotPages ?? g.hostMaxGfn;
  const memslots: Memslot[] = [{ id: 0, as_id: 0, base_gfn: 0, npages: slotPages, flags: 0, deleted: false }];
  const kvm: Kvm = {
    kobj,
    features: cfg.features,
    geometry: g,
    vm_bugged: false,
    mmu_lock: new RwLock("mmu_lock", kobj),
    slots_lock: new Mutex("slots_lock", kobj),
    tdp_mmu_pages_lock: new Spinlock("tdp_mmu_pages_lock", kobj),
    tdp_mmu_roots: new ListHead<KvmMmuPage>("tdp_mmu_roots", null, kobj),
    tdp_mmu_zap_wq: null,
    tdp_mmu_pages: new Atomic("tdp_mmu_pages", 0, kobj),
    users_count: new Atomic("users_count", 1, kobj),
    teardownHolds: false,
    userRefs: new Map(),
    liveUserRefs: new Set(),
    created_vcpus: 0,
    mmu_invalidate_seq: new Atomic("mmu_invalidate_seq", 0, kobj),
    mmu_invalidate_in_progress: new Atomic("mmu_invalidate_in_progress", 0, kobj),
    vcpus: [],
    memslots,
    hostPfn: new Map(),
    pages: new Map(),
    nextPageId: 1,
    stats: {
      remoteTlbFlushes: 0,
      rootsAllocated: 0,
      rootsFreed: 0,
      pagesAllocated: 0,
      pagesFreed: 0,
      sptesZapped: 0,
      faults: 0,
      faultRetries: 0,
    },
    ghost: { fastZapRoots: new Map(), notifierRanges: [], gifts: new Map() },
    mmu_invalidate_range_start: new Atomic("mmu_invalidate_range_start", -1, kobj),
    mmu_invalidate_range_end: new Atomic("mmu_invalidate_range_end", -1, kobj),
    tlb: new Atomic("tlb", 0, kobj),
    tlbFlushLog: [],
    rootFrames: { pool: null, free: [], next: 0 },
    nx:
      cfg.nxHugePages === undefined
        ? null
        : {
            recovery_ratio: cfg.nxHugePages.recoveryRatio,
            possible_nx_huge_pages: new ListHead<KvmMmuPage>("possible_nx_huge_pages", null, kobj),
            nx_lpage_splits: new Atomic("nx_lpage_splits", 0, kobj),
          },
  };
  const env = host().env;
  env.set("mmu.kvm", kvm);
  // KVM_SET_USER_MEMORY_REGION for slot 0: a slot the era refuses is not created (user space got
  // -EINVAL), so faults on its gfns find no slot.
  if (kvm_arch_prepare_memory_region(kvm, memslots[0]) !== 0) memslots.length = 0;
  return kvm;
}

/** kvm_vm_ioctl_create_vcpu(): a vCPU with no root loaded. */
export function kvm_vcpu_create(kvm: Kvm, smm = 0): Vcpu {
  const id = kvm.vcpus.length;
  const v: Vcpu = {
    vcpu_id: id,
    kvm,
    root: null,
    prev_roots: [null, null, null],
    requests: new Atomic(`vcpu${id}.requests`, 0, kvm.kobj),
    smm,
    inGuest: false,
    tlb: { byHpa: new Map(), gen: 0 },
  };
  kvm.vcpus.push(v);
  kvm.created_vcpus++;
  return v;
}

/**
 * tdp_mmu_alloc_sp() + tdp_mmu_init_sp(): a page-table page (or a root) with
 * `ptes` zeroed SPTEs. Not yet visible to anyone: no shared access.
 */
export function tdp_mmu_alloc_sp(
  kvm: Kvm,
  roleWord: number,
  gfn: number,
  ptep: Atomic | null,
  isRoot: boolean,
): KvmMmuPage {
  // The page allocation is the expensive part of installing a table (published-figures E5): priced here,
  // where the model allocates, not guessed from object names.
  host().cost("pt_alloc", 1);
  const sp = init_sp(kvm, roleWord, gfn, ptep, isRoot, ({ kobj }) => {
    const n = kvm.geometry.ptesPerTable;
    const spt: Atomic[] = new Array(n);
    for (let i = 0; i < n; i++) spt[i] = new Atomic(`spte[${i}]`, 0, kobj);
    return spt;
  });
  // Built now, not on first use: object ids must not depend on which task touches the page first.
  void sp.spt;
  if (isRoot) kvm.stats.rootsAllocated++;
  else kvm.stats.pagesAllocated++;
  return sp;
}

/**
 * A page of a tree that was populated before the run and is only represented lazily (src/mmu/
 * compressed.ts): the header exists, its SPTE words are built by `build` on first use. No allocation
 * happens in the modelled kernel, so nothing is priced or counted.
 */
export function lazy_sp(
  kvm: Kvm,
  roleWord: number,
  gfn: number,
  ptep: Atomic | null,
  build: (sp: KvmMmuPage) => Atomic[],
): KvmMmuPage {
  return init_sp(kvm, roleWord, gfn, ptep, false, build);
}

function init_sp(
  kvm: Kvm,
  roleWord: number,
  gfn: number,
  ptep: Atomic | null,
  isRoot: boolean,
  build: (sp: KvmMmuPage) => Atomic[],
): KvmMmuPage {
  const pageId = kvm.nextPageId++;
  const level = ROLE.level.get(roleWord);
  const name = isRoot ? `root#${pageId}` : `sp#${pageId}(L${level},gfn=${gfn})`;
  const kobj = kzalloc(isRoot ? "tdp_root" : "tdp_page", name);
  let spt: Atomic[] | null = null;
  const sp: KvmMmuPage = {
    pageId,
    kobj,
    role: new Atomic("role", roleWord, kobj),
    level,
    gfn,
    get spt(): Atomic[] {
      if (spt === null) spt = build(sp);
      return spt;
    },
    ptep,
    isRoot,
    tdp_mmu_root_count: new Refcount("tdp_mmu_root_count", 0, kobj),
    link: null as unknown as ListHead<KvmMmuPage>,
    rcu_head: new RcuHead(kobj),
    tdp_mmu_async_work:
      isRoot && kvm.features.asyncZapWorker ? new WorkStruct("tdp_mmu_async_work", kobj) : null,
    tdp_mmu_scheduled_root_to_zap: false,
    nx_huge_page_disallowed: false,
    possible_nx_huge_page_link: null,
    hpa: isRoot ? allocRootFrame(kvm) : -1,
  };
  (sp as { link: ListHead<KvmMmuPage> }).link = new ListHead<KvmMmuPage>("link", sp, kobj);
  // Only where the mitigation is on, so that other VMs' object ids stay as they were.
  if (kvm.nx !== null && !isRoot)
    (sp as { possible_nx_huge_page_link: ListHead<KvmMmuPage> | null }).possible_nx_huge_page_link =
      new ListHead<KvmMmuPage>("possible_nx_huge_page_link", sp, kobj);
  kvm.pages.set(pageId, sp);
  return sp;
}

/**
 * Reuse freed root frames from now on (the TLB model needs it: translations are tagged by frame).
 * Called in setup, when a vCPU that runs on the modelled CPU is spawned.
 */
export function reuse_root_frames(kvm: Kvm): void {
  if (kvm.rootFrames.pool === null) kvm.rootFrames.pool = new Shared("root_frames", kvm.kobj);
}

/** The lowest free root frame (the page allocator reuses freed pages; lowest first keeps runs deterministic). */
function allocRootFrame(kvm: Kvm): number {
  const f = kvm.rootFrames;
  if (f.free.length === 0) return f.next++;
  return f.free.shift()!;
}

/** Give a freed root's frame back, when frames are reused: a later root may get the same hpa. */
export function freeRootFrame(kvm: Kvm, sp: KvmMmuPage): void {
  if (sp.hpa < 0 || kvm.rootFrames.pool === null) return;
  const f = kvm.rootFrames.free;
  let i = 0;
  while (i < f.length && f[i] < sp.hpa) i++;
  f.splice(i, 0, sp.hpa);
}

/**
 * The page allocator's side of allocating a root (alloc_page() in tdp_mmu_alloc_sp()): with frame
 * reuse on, an access of the frame pool, so the root allocated next is ordered against root frees.
 */
export function* alloc_root_frame(kvm: Kvm): Gen<void> {
  const pool = kvm.rootFrames.pool;
  if (pool !== null) yield op("rmw", pool, "alloc_page (root)");
}

/** free_page() of a root's frame in tdp_mmu_free_sp(): an access of the frame pool when frames are reused. */
export function* free_root_frame(kvm: Kvm, sp: KvmMmuPage): Gen<void> {
  const pool = kvm.rootFrames.pool;
  if (!sp.isRoot || pool === null) return;
  yield op("rmw", pool, "free_page (root)");
  freeRootFrame(kvm, sp);
}

/** spte_to_child_sp(): the page a non-leaf SPTE points at. */
export function spte_to_child_sp(kvm: Kvm, childId: number): KvmMmuPage | undefined {
  return kvm.pages.get(childId);
}
