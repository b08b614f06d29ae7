/**
 * Behaviour switches, one per kernel commit that changed the root lifecycle.
 * A kernel version is a preset of these (presets.ts); any single feature can
 * be overridden on top of a preset.
 */
export interface Features {
  /**
   * 04dc4e6ce274 (5.16-rc): kvm_tdp_mmu_get_root() is a plain refcount_inc_not_zero();
   * callers filter invalid roots. Off: get_root also fails on an invalid root.
   */
  readonly getRootIgnoresInvalid: boolean;
  /**
   * ba3a6120a4e7 (5.18-rc): a present leaf SPTE with volatile bits (Accessed, or Dirty on a
   * writable SPTE, which the CPU sets without mmu_lock) is written with XCHG even under the write
   * mmu_lock, so the bits the CPU set meanwhile come back to KVM. Off (5.10-5.17): a plain store,
   * which can clobber a Dirty bit (spte-lost-dirty).
   */
  readonly volatileSpteXchg: boolean;
  /**
   * 86931ff7207b (5.18-rc5, "KVM: x86/mmu: Do not create SPTEs for GFNs that exceed
   * host.MAXPHYADDR"): kvm_arch_prepare_memory_region() refuses a memslot that reaches past
   * kvm_mmu_max_gfn() (host MAXPHYADDR), and a fault on such a gfn without a slot is emulated with
   * no MMIO SPTE. Off (5.17): such a slot is accepted and faults map it, past the end every TDP MMU
   * zap stops at, so those SPTEs and their tables are never zapped (spte-beyond-max-gfn).
   */
  readonly memslotMaxGfnCheck: boolean;
  /** a955cad84cda (5.16-rc): a fault whose root became invalid is stale and retried. */
  readonly faultChecksInvalidRoot: boolean;
  /** d62007edf01f (5.16-rc): the mmu_notifier unmap also zaps invalid roots. */
  readonly unmapZapsInvalidRoots: boolean;
  /**
   * 22b94c4b63eb (5.18): invalidated roots are zapped by tdp_mmu_zap_root_work on the
   * per-VM workqueue tdp_mmu_zap_wq; kvm_tdp_mmu_zap_invalidated_roots() flushes it.
   */
  readonly asyncZapWorker: boolean;
  /**
   * efd995dae5eb + 8351779ce65f (5.18): putting the last reference to a *valid* root marks
   * it invalid ("defunct"), resets the count to 1 and hands the zap to the worker.
   * Off (5.17): the last put unlinks and zaps synchronously without yielding.
   */
  readonly defunctRoots: boolean;
  /** edbdb43fc96b (6.4): the TDP MMU holds its own reference on every root until invalidation. */
  readonly persistentRoots: boolean;
  /**
   * 0df9dab891ff (6.6-rc3): no worker; invalidation sets tdp_mmu_scheduled_root_to_zap and
   * kvm_tdp_mmu_zap_invalidated_roots() zaps those roots synchronously under the read lock.
   */
  readonly scheduledRootToZap: boolean;
  /**
   * f5238c2a60f1 + dab285e4ec73 (6.9): kvm_tdp_mmu_alloc_root() runs under the *read*
   * mmu_lock, re-checking for a racing allocation under tdp_mmu_pages_lock.
   */
  readonly rootAllocUnderReadLock: boolean;
  /** 576a15de8d29 (6.9): a vCPU frees its TDP roots under the read mmu_lock. */
  readonly rootFreeUnderReadLock: boolean;
  /**
   * How tdp_mmu_zap_root() walks: "single" (≤5.17, zap top-level entries one by one),
   * "two-pass" (1b6043e8e584, 5.18: 1G then root), "four-pass" (6.9: 4K, 2M, 1G, root).
   */
  readonly zapPasses: "single" | "two-pass" | "four-pass";
  /** 99b85fda91b1 (6.9): kvm_tdp_mmu_zap_leafs() skips invalid roots, which need no flush. */
  readonly leafZapSkipsInvalid: boolean;
  /** 526e609f0567 (6.13): aging skips invalid roots. */
  readonly agingSkipsInvalidRoots: boolean;
  /** a89ecbb56bc7 (6.14): root types (direct / mirror / invalid) for TDX; invalidate_roots(types). */
  readonly rootTypes: boolean;
  /**
   * b146a9b34aed + 4834eaded91e (6.15): aging runs without mmu_lock: TDP roots under RCU,
   * shadow-MMU rmaps under KVM_RMAP_LOCKED.
   */
  readonly locklessAging: boolean;
  /**
   * 6.4 as merged (seed 000): kvm_mmu_uninit_tdp_mmu() invalidates roots walking the list
   * under rcu_read_lock(), because the worker may still list_del_rcu() concurrently.
   */
  readonly teardownInvalidateUnderRcu: boolean;
  /**
   * David Matlack's "Eager Page Splitting for the TDP MMU" series (2022, 5.18 in the presets): eager page splitting. Enabling dirty logging first splits
   * the slot's huge SPTEs down to 4K under the read mmu_lock (kvm_mmu_slot_try_split_huge_pages(),
   * module parameter eager_page_split, default on), so vCPUs do not take the splits as faults.
   * Off: huge SPTEs are only write-protected and split by the next write fault.
   */
  readonly eagerPageSplit: boolean;
  /**
   * "recover huge pages in place" (David Matlack, in the 6.13 x86 MMU pull): disabling dirty logging recovers huge pages in place
   * (kvm_tdp_mmu_recover_huge_pages(): a page table is replaced by a huge leaf built from one of its
   * children, then one flush). Off: the page tables that could be huge are zapped
   * (kvm_tdp_mmu_zap_collapsible_sptes()) and refaulted huge by the vCPUs.
   */
  readonly hugePageRecoveryInPlace: boolean;
  /**
   * a57750909580 (6.18, Vipin Sharma and James Houghton, "KVM: x86/mmu: Recover TDP MMU NX huge
   * pages using MMU read lock"): the NX huge page recovery worker zaps TDP MMU pages with mmu_lock
   * held for read, taking each page off possible_nx_huge_pages under tdp_mmu_pages_lock and zapping
   * its parent SPTE with a cmpxchg only if it still points at the page. Off (5.x-6.17): the worker
   * holds mmu_lock for write and zaps with tdp_mmu_set_spte(). The presets stop at 6.15, so it is
   * off in all of them.
   */
  readonly nxRecoveryUnderReadLock: boolean;
}

export type FeatureName = keyof Features;

export const FEATURE_NAMES: readonly FeatureName[] = [
  "getRootIgnoresInvalid",
  "volatileSpteXchg",
  "memslotMaxGfnCheck",
  "faultChecksInvalidRoot",
  "unmapZapsInvalidRoots",
  "asyncZapWorker",
  "defunctRoots",
  "persistentRoots",
  "scheduledRootToZap",
  "rootAllocUnderReadLock",
  "rootFreeUnderReadLock",
  "zapPasses",
  "leafZapSkipsInvalid",
  "agingSkipsInvalidRoots",
  "rootTypes",
  "locklessAging",
  "teardownInvalidateUnderRcu",
  "eagerPageSplit",
  "hugePageRecoveryInPlace",
  "nxRecoveryUnderReadLock",
];
