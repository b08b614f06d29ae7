/**
 * Every design the seed threads debate, with the scenario that decides it and
 * the verdict we expect. `tdplab seeds` runs them all; the test suite asserts
 * every verdict.
 */
export type Verdict = "safe" | "unsafe";

export interface SeedDesign {
  readonly thread: "000" | "001" | "002" | "003" | "004";
  /** What the design is, in the thread's words. */
  readonly design: string;
  readonly scenario: string;
  readonly kernel: string;
  readonly variant: string | null;
  readonly expected: Verdict;
  /** For unsafe designs: the invariants a counterexample may break (any of them). */
  readonly invariant?: readonly string[];
  /** Why, or what the checker decided where the thread left it open. */
  readonly note: string;
}

export const SEED_DESIGNS: readonly SeedDesign[] = [
  {
    thread: "000",
    design: "uninit invalidates roots under rcu_read_lock() while the worker unlinks them",
    scenario: "seed-000-teardown",
    kernel: "v6.4",
    variant: null,
    expected: "safe",
    note: "list_del_rcu() keeps ->next and the free waits for the walker's grace period",
  },
  {
    thread: "000",
    design: "uninit invalidates roots holding mmu_lock for write",
    scenario: "seed-000-teardown",
    kernel: "v6.4",
    variant: "uninit-invalidate-under-mmu-lock",
    expected: "safe",
    note: "the worker needs the read lock to unlink, so it cannot run during the walk",
  },
  {
    thread: "000",
    design: "uninit invalidates roots with neither RCU nor mmu_lock",
    scenario: "seed-000-teardown",
    kernel: "v6.4",
    variant: "uninit-invalidate-unprotected",
    expected: "unsafe",
    invariant: ["use-after-free"],
    note: "the worker frees the root the walker stands on",
  },
  {
    thread: "000",
    design: "fast zap as merged: invalidation under the write mmu_lock, a fault racing it",
    scenario: "seed-000-invalidate-vs-fault",
    kernel: "v6.4",
    variant: null,
    expected: "safe",
    note: "control for the next row",
  },
  {
    thread: "000",
    design: 'fast zap invalidates under the read mmu_lock, slots_lock serialising invalidators ("Maybe")',
    scenario: "seed-000-invalidate-vs-fault",
    kernel: "v6.4",
    variant: "zap-all-fast-invalidate-read-lock",
    expected: "unsafe",
    note: "decided by the checker: faults also run under the read lock",
  },
  {
    thread: "001",
    design: "walk ends when the previous root was invalidated; all roots invalidated together",
    scenario: "seed-001-walk-vs-fast-zap",
    kernel: "v5.17",
    variant: "next-root-terminate-on-invalid",
    expected: "safe",
    note: "every root older than the previous one is invalid too",
  },
  {
    thread: "001",
    design: "walk ends when the previous root was invalidated; single roots go defunct",
    scenario: "seed-001-root-walk",
    kernel: "v5.18",
    variant: "next-root-terminate-on-invalid",
    expected: "unsafe",
    invariant: ["walk-complete"],
    note: "a root can go defunct between the walker's validity check and its get",
  },
  {
    thread: "001",
    design: "walk restarts from the head when the previous root was invalidated",
    scenario: "seed-001-root-walk",
    kernel: "v5.18",
    variant: "next-root-restart-on-invalid",
    expected: "safe",
    note: "",
  },
  {
    thread: "001",
    design: "FIFO root list, walk continues (Ben's suggestion)",
    scenario: "seed-001-root-walk",
    kernel: "v5.18",
    variant: "root-list-fifo",
    expected: "safe",
    note: "",
  },
  {
    thread: "002",
    design: "as merged (5.18): skip invalid roots, every invalid-setter queues the worker",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: null,
    expected: "safe",
    note: "control for the rows below",
  },
  {
    thread: "002",
    design: "invalidation re-queues roots that are already invalid",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: "invalidate-requeues-invalid-roots",
    expected: "unsafe",
    note: "a work item queued twice runs once: one gifted reference is never put",
  },
  {
    thread: "002",
    design: "put_root sets invalid without queueing the worker",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: "put-root-invalid-without-queue",
    expected: "unsafe",
    note: "zap_all_fast skips the invalid root and returns before it is zapped",
  },
  {
    thread: "002",
    design: "the zapper puts references it was never gifted (5.17 zapper, defunct roots)",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: "zapper-puts-ungifted-references",
    expected: "unsafe",
    note: "the worker's gift is put twice",
  },
  {
    thread: "002",
    design: "the flush left out of zap_all_fast",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: "zap-all-fast-without-flush",
    expected: "unsafe",
    note: "the memslot is gone while an invalid root still maps it",
  },
  {
    thread: "003",
    design: "refcount_dec_not_one(), then refcount_set(0) and free",
    scenario: "seed-003-put-root",
    kernel: "v5.18",
    variant: "put-root-dec-not-one-set-zero",
    expected: "unsafe",
    invariant: ["use-after-free", "refcount"],
    note: "a get_root() between the last dec_not_one() and set(0) is freed under its holder",
  },
  {
    thread: "003",
    design: "Paolo: dec_and_test, xchg, set(1), zap, dec_and_test",
    scenario: "seed-003-put-root",
    kernel: "v5.18",
    variant: "put-root-dec-and-test-open-coded",
    expected: "safe",
    note: "",
  },
  {
    thread: "003",
    design: "Sean: dec_and_test, xchg, set(1), zap, recurse into put_root",
    scenario: "seed-003-put-root",
    kernel: "v5.18",
    variant: "put-root-recursive",
    expected: "safe",
    note: "",
  },
  {
    thread: "003",
    design: "whole-word xchg of role: every other role bit preserved",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: null,
    expected: "safe",
    note: "checked by role-bits-preserved after every step",
  },
  {
    thread: "003",
    design: "open-coded test-then-set of role.invalid without an atomic",
    scenario: "seed-002-zap-worker",
    kernel: "v5.18",
    variant: "mark-invalid-open-coded",
    expected: "safe",
    note: "decided by the checker: safe while every setter holds mmu_lock or the last reference, and no other role bit changes",
  },
  {
    thread: "004",
    design: "read-only unlock of an empty rmap writes 0 back",
    scenario: "seed-004-empty-rmap",
    kernel: "v6.15",
    variant: "rmap-unlock-readonly-writes-zero",
    expected: "unsafe",
    note: "the writer's first entry is lost",
  },
  {
    thread: "004",
    design: "read-only unlock of an empty rmap is a no-op (as merged)",
    scenario: "seed-004-empty-rmap",
    kernel: "v6.15",
    variant: null,
    expected: "safe",
    note: "",
  },
  {
    thread: "004",
    design: "non-read-only kvm_rmap_lock() without the write mmu_lock",
    scenario: "seed-004-add-to-single",
    kernel: "v6.15",
    variant: "rmap-lock-without-mmu-lock",
    expected: "unsafe",
    invariant: ["lockdep"],
    note: "",
  },
  {
    thread: "004",
    design: "a writer changes the chain without taking KVM_RMAP_LOCKED",
    scenario: "seed-004-zap-all",
    kernel: "v6.15",
    variant: "rmap-writer-without-bit",
    expected: "unsafe",
    note: "the lockless reader walks a freed desc",
  },
];
