import type { KObject } from "../kernel/alloc.js";
import type { Atomic } from "../kernel/atomic.js";
import type { RcuHead } from "../kernel/rcu.js";
import type { ListHead } from "../kernel/rculist.js";
import type { Refcount } from "../kernel/refcount.js";
import type { RwLock } from "../kernel/rwlock.js";
import type { Shared } from "../kernel/shared.js";
import type { Mutex, Spinlock } from "../kernel/spinlock.js";
import type { Buggable } from "../kernel/warn.js";
import type { Workqueue, WorkStruct } from "../kernel/workqueue.js";
import type { Features } from "./features.js";

/**
 * Page-table geometry. Real x86-64 tables have 512 entries per page and 4 or 5
 * levels; the checker runs tiny tables (2-4 entries) so every interleaving fits.
 * KVM_PAGES_PER_HPAGE(level) is ptesPerTable^(level-1).
 */
export interface Geometry {
  readonly rootLevel: 4 | 5;
  readonly ptesPerTable: number;
  /** The page tables' reach: ptesPerTable^rootLevel frames (the walk of a whole root covers it). */
  readonly maxGfn: number;
  /**
   * Host MAXPHYADDR in frames (boot_cpu_data.x86_phys_bits, shadow_phys_bits; kvm_host.maxphyaddr
   * from 6.10): kvm_mmu_max_gfn() + 1, where every TDP MMU zap and walk stops
   * (tdp_mmu_max_gfn_exclusive()). At most the reach; on hardware 2^(46-12) under a 2^(48-12) reach.
   */
  readonly hostMaxGfn: number;
  /**
   * The guest's MAXPHYADDR in frames (CPUID 0x80000008 as user space sets it): the guest cannot
   * generate a larger gfn (its own walk takes #PF(RSVD)), so no fault reaches KVM for one. It may
   * exceed hostMaxGfn (a pool of hosts advertising the largest MAXPHYADDR, or KVM nested under a
   * host that reports a smaller one), which is how a fault past the host's bound can happen.
   */
  readonly guestMaxGfn: number;
}

/**
 * struct kvm_mmu_page, for TDP pages (mmu_internal.h). Roots and non-root page
 * tables share the type; root-only fields are null/unused on the others.
 * The header and its spt page are one allocation, freed together through
 * call_rcu (tdp_mmu_free_sp_rcu_callback).
 */
export interface KvmMmuPage {
  /** Page id; non-leaf SPTEs store it as their pfn (spte_to_child_sp). */
  readonly pageId: number;
  readonly kobj: KObject;
  readonly role: Atomic;
  readonly level: number;
  /** First gfn this page maps. */
  readonly gfn: number;
  /** The SPTEs of this page table (struct page *spt). */
  readonly spt: Atomic[];
  /** Parent SPTE (sp->ptep); null for roots. */
  readonly ptep: Atomic | null;
  readonly isRoot: boolean;
  /** tdp_mmu_root_count (roots only). */
  readonly tdp_mmu_root_count: Refcount;
  /** Entry on kvm->arch.tdp_mmu_roots (roots only). */
  readonly link: ListHead<KvmMmuPage>;
  readonly rcu_head: RcuHead;
  /** E3-E4: tdp_mmu_async_work. */
  readonly tdp_mmu_async_work: WorkStruct | null;
  /** E5+: tdp_mmu_scheduled_root_to_zap, protected by slots_lock. */
  tdp_mmu_scheduled_root_to_zap: boolean;
  /**
   * The page exists only because the NX huge page mitigation kept a fault from mapping huge. Written
   * before the page is linked and cleared under tdp_mmu_pages_lock (or the write mmu_lock).
   */
  nx_huge_page_disallowed: boolean;
  /**
   * sp->possible_nx_huge_page_link: on kvm->arch.possible_nx_huge_pages while the page could be
   * replaced by a huge page (null when the VM has no NX mitigation, see Kvm.nx).
   */
  readonly possible_nx_huge_page_link: ListHead<KvmMmuPage> | null;
  /**
   * The root's host page frame (root->spt's physical address, roots only; -1 otherwise): what
   * vcpu->arch.mmu->root.hpa holds and what the CPU tags TLB entries with (the EPTP). A freed
   * root's frame goes back to the allocator, so a later root can get the same one.
   */
  readonly hpa: number;
}

/**
 * One translation a vCPU's TLB caches (the CPU's, not KVM's): made by a guest access through the
 * root loaded at the time, tagged by that root's frame, and kept until a flush removes it.
 */
export interface TlbEntry {
  /** First gfn the translation covers, and how many. */
  readonly gfn: number;
  readonly pages: number;
  readonly pfn: number;
  readonly writable: boolean;
  /** The CPU has set the Dirty bit through this entry (a write needs no further walk). */
  dirty: boolean;
  /** Where it came from: the root it was walked in, the leaf SPTE and the table holding it. */
  readonly root: KvmMmuPage;
  readonly sptep: Atomic;
  readonly table: KvmMmuPage;
}

/**
 * The page frames roots get, for the TLB model: a freed root's frame is reused (lowest first) only
 * once `pool` exists, which a vCPU running on the modelled CPU creates when it is spawned. Then
 * allocating and freeing a root frame are accesses of this object, so the explorers try a new root
 * both before and after an old one is freed; otherwise nothing reads a root's frame and every root
 * gets a new one, with no access.
 */
export interface RootFrames {
  /** The pool as a shared object; exists while frames are reused. */
  pool: Shared | null;
  readonly free: number[];
  next: number;
}

/**
 * A vCPU's TLB: translations by root frame (hpa), then by first gfn. Remote flushes reach it
 * through the VM's flush log: the CPU applies the flushes logged after `gen` when its next access
 * looks at the TLB (an access ordered against the flushes), so the contents change only in the
 * vCPU's own steps, and what an access announces depends only on what the vCPU has seen.
 */
export interface VcpuTlb {
  readonly byHpa: Map<number, Map<number, TlbEntry>>;
  /** The last flush of the VM's log this TLB has applied (the `tlb` word's value then). */
  gen: number;
}

/** One remote flush: the VM's `tlb` word's value after it, and the gfn range it covered. */
export interface TlbFlushRecord {
  readonly gen: number;
  readonly start: number;
  readonly end: number;
}

/** KVM_REQ_* bits in vcpu->requests that the model uses. */
export const KVM_REQ = {
  TLB_FLUSH: 0,
  MMU_FREE_OBSOLETE_ROOTS: 1,
  MMU_RELOAD: 2,
} as const;

export interface Vcpu {
  readonly vcpu_id: number;
  readonly kvm: Kvm;
  /** vcpu->arch.mmu->root.hpa: the root this vCPU holds one reference on, or null (INVALID_PAGE). */
  root: KvmMmuPage | null;
  /** prev_roots[]: cached roots, one reference each. */
  readonly prev_roots: (KvmMmuPage | null)[];
  /** vcpu->requests. */
  readonly requests: Atomic;
  /** Address space the vCPU is in (1 = SMM). */
  smm: number;
  /** True while the vCPU is in guest mode on `root` (for invariant 8). */
  inGuest: boolean;
  /** The CPU's TLB for this vCPU (hardware state: only guest accesses and flushes touch it). */
  readonly tlb: VcpuTlb;
}

export interface Memslot {
  readonly id: number;
  readonly as_id: number;
  readonly base_gfn: number;
  readonly npages: number;
  flags: number;
  deleted: boolean;
}

/** What invariant checks remember about the run (ghost state; never read by the model). */
export interface Ghost {
  /** Roots invalidated by a fast zap that has not returned yet, per fast-zap serial. */
  readonly fastZapRoots: Map<number, Set<KvmMmuPage>>;
  /** gfn ranges whose invalidate_range_start is in progress or done, for inv 11. */
  readonly notifierRanges: { start: number; end: number; active: boolean }[];
  /** Gifts of a reference to a worker or zapper, per root page id (E3 inv 13). */
  readonly gifts: Map<number, number>;
}

/**
 * The NX huge page mitigation of a VM (module parameter kvm.nx_huge_pages, the iTLB multihit
 * workaround): an executable fault maps 4K only, and the pages split for it are listed so that the
 * recovery worker can zap them later and let the guest map huge again.
 */
export interface NxHugePages {
  /** nx_huge_pages_recovery_ratio: each pass zaps 1/ratio of the listed pages, rounded up (0: none). */
  readonly recovery_ratio: number;
  /**
   * kvm->arch.possible_nx_huge_pages (the TDP MMU's list since a57750909580): protected by the
   * write mmu_lock, or by tdp_mmu_pages_lock when mmu_lock is held for read.
   */
  readonly possible_nx_huge_pages: ListHead<KvmMmuPage>;
  /** kvm->stat.nx_lpage_splits (nr_pages of the list since 6.18): read without a lock by the worker. */
  readonly nx_lpage_splits: Atomic;
}

/** struct kvm, the parts the TDP MMU uses. */
export interface Kvm extends Buggable {
  readonly kobj: KObject;
  readonly features: Features;
  readonly geometry: Geometry;
  readonly mmu_lock: RwLock;
  readonly slots_lock: Mutex;
  readonly tdp_mmu_pages_lock: Spinlock;
  /** kvm->arch.tdp_mmu_roots, newest first. */
  readonly tdp_mmu_roots: ListHead<KvmMmuPage>;
  /** E3-E4: kvm->arch.tdp_mmu_zap_wq. */
  tdp_mmu_zap_wq: Workqueue | null;
  /** kvm->arch.tdp_mmu_pages: count of live non-root TDP pages. */
  readonly tdp_mmu_pages: Atomic;
  readonly users_count: Atomic;
  /**
   * A teardown task (destroyVmTask) holds a reference until every other user is gone, so no other
   * kvm_put_kvm() can be the last one. Set in program setup; never changes afterwards.
   */
  teardownHolds: boolean;
  /**
   * The references of users that took theirs in their own prologue (kvm_get_kvm_at_spawn() inside
   * a task): per task id, one object per reference, which that task's kvm_put_kvm() completes. The
   * teardown task awaits them, so it is never reordered before a put it has to wait for.
   */
  readonly userRefs: Map<number, number[]>;
  /** Every object in userRefs: the references not yet put. */
  readonly liveUserRefs: Set<number>;
  created_vcpus: number;
  readonly mmu_invalidate_seq: Atomic;
  readonly mmu_invalidate_in_progress: Atomic;
  readonly vcpus: Vcpu[];
  readonly memslots: Memslot[];
  /** Host mapping gfn -> pfn (what the primary MMU maps behind each gfn). */
  readonly hostPfn: Map<number, number>;
  /** Page id -> page, to follow non-leaf SPTEs (spte_to_child_sp). */
  readonly pages: Map<number, KvmMmuPage>;
  nextPageId: number;
  readonly stats: KvmStats;
  readonly ghost: Ghost;
  /**
   * kvm->mmu_invalidate_range_start/end (gfns; INVALID_GPA = -1 while unset): the union of the
   * ranges of the invalidations in progress, written under the write mmu_lock, read by
   * mmu_invalidate_retry_gfn() under mmu_lock.
   */
  readonly mmu_invalidate_range_start: Atomic;
  readonly mmu_invalidate_range_end: Atomic;
  /**
   * The VM's remote TLBs as one shared object: kvm_flush_remote_tlbs() writes it, so the order of
   * flushes against SPTE changes and lock drops is visible to the explorers.
   */
  readonly tlb: Atomic;
  /** The remote flushes so far, in order (VcpuTlb applies them lazily). */
  readonly tlbFlushLog: TlbFlushRecord[];
  /** The host page frames roots are allocated from (see RootFrames). */
  readonly rootFrames: RootFrames;
  /** The NX huge page mitigation, or null when it is off (kvm.nx_huge_pages=off). */
  readonly nx: NxHugePages | null;
}

export interface KvmStats {
  remoteTlbFlushes: number;
  rootsAllocated: number;
  rootsFreed: number;
  pagesAllocated: number;
  pagesFreed: number;
  sptesZapped: number;
  faults: number;
  faultRetries: number;
}
