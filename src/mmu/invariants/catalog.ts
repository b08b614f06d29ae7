/**
 * Every invariant name tdplab reports, with what it states. Violations carry these names; a
 * variant's `waives`, a scenario file's `check.invariants` and `tdplab list invariants` are
 * checked against this list, so a misspelt name is an error instead of a silent no-op.
 */
export interface InvariantInfo {
  readonly name: string;
  /** Where it comes from: the root protocol, page tables, rmaps, or the kernel primitives. */
  readonly area: "roots" | "page tables" | "rmap" | "kernel" | "walks" | "tool";
  readonly meaning: string;
}

export const INVARIANTS: readonly InvariantInfo[] = [
  { name: "inv1-refcount-nonneg", area: "roots", meaning: "a root's tdp_mmu_root_count never goes below 0" },
  {
    name: "inv2-no-resurrect",
    area: "roots",
    meaning: "a root whose count reached 0 is never referenced again (no get after the final put)",
  },
  {
    name: "inv3-list-membership",
    area: "roots",
    meaning: "a root with a reference is on tdp_mmu_roots, and no root is freed while still on it",
  },
  { name: "inv4-no-uaf-roots", area: "roots", meaning: "no access to a root after it was freed" },
  {
    name: "inv6-invalid-monotone",
    area: "roots",
    meaning: "role.invalid only goes from 0 to 1, and only under the lock the era requires",
  },
  {
    name: "inv7-final-put-invalid",
    area: "roots",
    meaning: "the final put of a root finds it invalid (it was zapped and invalidated first)",
  },
  {
    name: "inv8-no-invalid-root-entered",
    area: "roots",
    meaning: "a vCPU never enters the guest on an invalid root",
  },
  {
    name: "inv10-fast-zap-complete",
    area: "roots",
    meaning: "when kvm_mmu_zap_all_fast() returns, no root that was valid at its start still maps the slot",
  },
  {
    name: "inv11-notifier-complete",
    area: "roots",
    meaning: "when an mmu_notifier invalidation returns, no root maps the invalidated range",
  },
  { name: "inv12-zap-once", area: "roots", meaning: "an invalid root is handed to the zapper once" },
  { name: "inv13-work-once", area: "roots", meaning: "a root's zap work item is queued at most once" },
  {
    name: "inv14-teardown-clean",
    area: "roots",
    meaning: "after VM teardown no root, page table or work item is left",
  },
  {
    name: "inv15-lock-discipline",
    area: "roots",
    meaning: "the root list and root state change only under the locks the era prescribes",
  },
  {
    name: "L1-invalid-roots-freed",
    area: "roots",
    meaning: "every invalidated root is eventually freed (no reference is leaked)",
  },
  {
    name: "L2-yield-progress",
    area: "roots",
    meaning: "a walk that yields makes forward progress before it yields again",
  },
  {
    name: "L3-bounded-hold",
    area: "roots",
    meaning:
      "a task holding mmu_lock or inside RCU changes at most the bound of SPTEs (default: one 1G SPTE and its subtree) between preemption points",
  },
  {
    name: "inv5-rcu-free-page-table",
    area: "page tables",
    meaning: "a page table is freed only through RCU, after it was unlinked",
  },
  {
    name: "inv9-no-new-spte-in-invalid-root",
    area: "page tables",
    meaning: "no SPTE is installed under a root that is already invalid",
  },
  {
    name: "inv16-frozen-spte",
    area: "page tables",
    meaning: "a frozen (REMOVED) SPTE is only replaced by the task that froze it",
  },
  {
    name: "inv16-frozen-before-free",
    area: "page tables",
    meaning: "the SPTEs of a removed page table are frozen before it is freed",
  },
  {
    name: "page-table-orphaned",
    area: "page tables",
    meaning:
      "a linked page table leaves the tree only through a setter of its parent SPTE that saw it (and tears it down); a store that did not see it leaks it",
  },
  {
    name: "inv17-no-lost-flush",
    area: "page tables",
    meaning:
      "a TLB flush owed for a zapped, write-protected or cleaned SPTE, or a table replaced by a huge leaf, is done before mmu_lock (slots_lock for dirty logging) is dropped",
  },
  {
    name: "split-preserves-mapping",
    area: "page tables",
    meaning:
      "the table that replaces a huge leaf maps the same pfns (pfn + offset per child), with no permission the huge SPTE lacked and its Dirty bit kept",
  },
  {
    name: "tlb-stale-access",
    area: "page tables",
    meaning:
      "the guest never uses a TLB entry KVM believes gone: one cached under a freed root (whose frame a new root reuses) or from a freed page table",
  },
  {
    name: "host-page-uaf",
    area: "page tables",
    meaning:
      "the guest never reaches a host page the primary MMU took back after an mmu_notifier invalidation returned",
  },
  {
    name: "spte-lost-dirty",
    area: "page tables",
    meaning: "a Dirty bit the CPU set in an SPTE is never overwritten by a store that did not see it",
  },
  {
    name: "spte-beyond-max-gfn",
    area: "page tables",
    meaning:
      "no leaf SPTE maps a gfn past kvm_mmu_max_gfn() (host MAXPHYADDR), where every TDP MMU zap stops: it could never be zapped",
  },
  {
    name: "inv18-no-stale-iterator",
    area: "page tables",
    meaning: "an iterator never steps into a page table that was freed under it",
  },
  {
    name: "inv19-rmap-lock-mutex",
    area: "rmap",
    meaning: "two tasks never hold one rmap's KVM_RMAP_LOCKED bit",
  },
  {
    name: "inv19-rmap-lock-unlocked-write",
    area: "rmap",
    meaning: "an rmap chain changes only under the write mmu_lock and the bit",
  },
  {
    name: "inv19-rmap-lock-readonly-restore",
    area: "rmap",
    meaning: "a read-only locker stores back exactly the value it locked",
  },
  {
    name: "inv19-rmap-lock-empty-locked",
    area: "rmap",
    meaning: "an empty rmap never carries KVM_RMAP_LOCKED",
  },
  {
    name: "inv19-rmap-lock-desc-freed",
    area: "rmap",
    meaning: "a desc is not freed while another task holds the bit, nor reachable once freed",
  },
  {
    name: "inv19-rmap-lock-lost-entry",
    area: "rmap",
    meaning: "an SPTE added and not removed stays reachable from its rmap",
  },
  {
    name: "inv19-rmap-lock-stale-entry",
    area: "rmap",
    meaning: "a removed SPTE is not reachable from an rmap",
  },
  { name: "inv19-rmap-lock-lost-dirty", area: "rmap", meaning: "a Dirty bit the CPU set is never lost" },
  {
    name: "role-bits-preserved",
    area: "roots",
    meaning: "marking a root invalid leaves its other role bits as they were (seed 003's open-coded xchg)",
  },
  {
    name: "walk-complete",
    area: "walks",
    meaning:
      "a root walk visits every root that was valid and referenced from its start to its end (seed 001)",
  },
  { name: "use-after-free", area: "kernel", meaning: "no access to an allocation after kfree()" },
  { name: "double-free", area: "kernel", meaning: "no allocation is freed twice" },
  {
    name: "refcount",
    area: "kernel",
    meaning: "refcount_t saturation, underflow or increment on 0 (its WARNs)",
  },
  { name: "lockdep", area: "kernel", meaning: "lock assertions and lock usage lockdep would splat on" },
  {
    name: "sleep-in-atomic",
    area: "kernel",
    meaning: "no sleeping call with a spinlock held or preemption off",
  },
  {
    name: "suspicious-rcu",
    area: "kernel",
    meaning: "rcu_dereference outside RCU and without the protecting lock",
  },
  { name: "list-corruption", area: "kernel", meaning: "CONFIG_DEBUG_LIST: no double add or corrupted list" },
  {
    name: "debugobjects",
    area: "kernel",
    meaning: "CONFIG_DEBUG_OBJECTS: an rcu_head or work item is not queued twice",
  },
  { name: "WARN", area: "kernel", meaning: "a WARN_ON the kernel code asserts fired" },
  { name: "BUG", area: "kernel", meaning: "a BUG_ON fired" },
  { name: "KVM_BUG_ON", area: "kernel", meaning: "a KVM_BUG_ON fired (the VM is marked bugged)" },
  { name: "deadlock", area: "kernel", meaning: "every unfinished task is blocked" },
  {
    name: "livelock",
    area: "kernel",
    meaning:
      "a run passed the step bound without finishing (possible livelock; inconclusive, never a violation)",
  },
  {
    name: "model-error",
    area: "tool",
    meaning:
      "tdplab's model itself failed (an exception in its code, or a broken promise to the engine): not a kernel finding; exit 70",
  },
  {
    name: "user-error",
    area: "tool",
    meaning:
      "an exception in the user's own module (a variant's override, a scenario module), or a misuse of the API there: exit 4",
  },
];

const BY_NAME = new Map(INVARIANTS.map((i) => [i.name, i]));

export function invariantInfo(name: string): InvariantInfo | undefined {
  return BY_NAME.get(name);
}

export const INVARIANT_NAMES: readonly string[] = INVARIANTS.map((i) => i.name);
