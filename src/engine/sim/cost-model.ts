import type { AccessOp } from "../op.js";

/**
 * The simulator's price list, in virtual nanoseconds. This is the ONE place where a number of the
 * timed model lives; every entry names its source in docs/published-figures.md (by its id,
 * e.g. "A2") or says plainly that it is an assumption. Every entry can be overridden with
 * a partial object (withCosts). Results must come out of these per-operation prices multiplied by
 * what the model functions actually do, never from a price for a whole scenario.
 *
 * How a step is priced: the op the task yields (its kind and the class of the object it touches)
 * gives a base price (opCost); model code adds explicit costs through host().cost(kind, units)
 * (hostCost), e.g. a remote TLB flush; the simulator adds both to the CPU's clock.
 */
export interface CostModel {
  /**
   * Read of an SPTE word. E4 (secondary, unverified): an L1-hitting load costs a few cycles. Part
   * of the ≈52 ns per zapped 4K SPTE of A2: a zap reads the SPTE then writes it, so read + write
   * = 52 ns; the split between the two is an assumption.
   */
  readonly spteReadNs: number;
  /**
   * Write or atomic exchange of an SPTE word (setting it FROZEN / non-present), including the
   * struct-page A/D writeback the kernel does for a zapped leaf. A2 (derived): ≈52 ns per 4 KiB
   * SPTE for a whole zap (7 s / 2^27), minus spteReadNs. Cross-check A4: 64 TiB ≈ 896 s.
   */
  readonly spteWriteNs: number;
  /** Any other plain load (READ_ONCE, list walk). E4 (secondary): a few cycles on an L1 hit. */
  readonly readNs: number;
  /** Any other plain store. E4 (secondary): a few cycles. */
  readonly writeNs: number;
  /** Any other locked read-modify-write (cmpxchg, fetch_add, refcount). E4: ~5–15 cycles L1, more if contended. */
  readonly rmwNs: number;
  /** An uncontended lock acquire (one LOCK cmpxchg on the lock word). E4 (prior only). */
  readonly lockAcquireNs: number;
  /** A lock release (a store, or a LOCK add for the rwlock reader count). E4 (prior only). */
  readonly lockReleaseNs: number;
  /** A `wait` op: the waiting itself costs nothing; the time passes while blocked. */
  readonly waitNs: number;
  /** kfree() of anything other than a page-table page. Assumption (no figure in published-figures.md). */
  readonly kfreeNs: number;
  /**
   * Freeing a page-table page (free_page + the kmem_cache free of its header) in the RCU callback.
   * Assumption: no figure in published-figures.md; E5 gives allocation only. Kept well below ptAllocNs.
   */
  readonly ptFreeNs: number;
  /**
   * Allocating a page-table page. E5: GFP_NOWAIT allocation "rarely > 20 µs, max 60 µs"; 20 µs is
   * the conservative end of the usual range (the consistency check of section 1 E prices a whole
   * split PT, allocation included, at ~31 µs).
   */
  readonly ptAllocNs: number;
  /**
   * KVM remote TLB flush with no vCPU in guest mode: kvm_make_all_cpus_request() sets the request
   * on every vCPU but sends no IPI. Assumption, bounded by E2 (an IPI round trip is 1–3 µs, and this
   * sends none).
   */
  readonly tlbFlushNs: number;
  /**
   * What each vCPU in guest mode adds to a remote TLB flush (the IPI and the wait for its ack).
   * E1 (derived): ≤≈73 µs at 64 running vCPUs, i.e. ≈1.1 µs each.
   */
  readonly tlbFlushPerRunningVcpuNs: number;
  /** Local TLB flush when a root is loaded (no IPI). Assumption, bounded by E2's 1–3 µs IPI round trip. */
  readonly tlbFlushLocalNs: number;
  /**
   * A VM exit and the re-entry after it (VMX/SVM transition, exit dispatch), charged once per exit.
   * E6: a lockless write-protection fault costs ≈1.2 µs end to end, exit and entry included, so the
   * round trip is at most about 1 µs.
   */
  readonly vmExitNs: number;
  /**
   * kvm_faultin_pfn() for a page the host already has (hva_to_pfn: get_user_pages_fast of a resident
   * 4K page). Assumption: no figure in published-figures.md; kept well below E6's 1.2 µs lockless fault.
   */
  readonly faultinPfnNs: number;
  /**
   * What the primary MMU adds to kvm_faultin_pfn() the first time a guest page is touched: its own
   * fault, allocating and zeroing a 4K host page. E6 (derived): populate ≈20–24 µs per 4K fault
   * including host page allocation; the low end, since exit, walk and table allocation are priced
   * separately.
   */
  readonly hostPageFaultNs: number;
  /**
   * One unit of the drawn part of a first-touch host page fault: the model draws 0..4 units per fault,
   * so with hostPageFaultNs the fault takes 20–24 µs, E6's range, and vCPUs do not run in lockstep.
   */
  readonly hostPageFaultSpreadNs: number;
  /**
   * Clearing one more 4K page when the first touch faults in a huge host page (hugetlbfs 2M or 1G:
   * clear_huge_page() zeroes all of it before the fault returns). Assumption: no figure in
   * published-figures.md; 4 KiB at about 16 GB/s of rep stosb, about 250 ns.
   */
  readonly hostPageClearNs: number;
  /**
   * The guest's own time to reach and touch one page when no exit is needed (memstress: an 8-byte
   * access per 4K page, each a TLB miss with a two-dimensional page walk). Assumption: no figure in
   * published-figures.md; a TLB miss with a 2D walk is some hundreds of cycles.
   */
  readonly guestPageAccessNs: number;
  /** A context switch (__schedule). Assumption: published-figures.md has no figure; a few µs is the usual order. */
  readonly contextSwitchNs: number;
  /**
   * Time from queue_work()/call_rcu() spawning a kworker or callback task to that task being
   * runnable (wake-up latency of an idle kworker). Assumption: no figure in published-figures.md.
   */
  readonly wakeupNs: number;
  /**
   * One RCU grace period, drawn uniformly from [min, max] per grace period. E3: "grace periods
   * extend for multiple milliseconds"; no clean typical number exists, so the range "a few ms to
   * tens of ms" of E3's "Use" column is taken as 3–30 ms.
   */
  readonly rcuGracePeriodNs: { readonly min: number; readonly max: number };
  /**
   * Non-preemptible kernels (PREEMPT_NONE/VOLUNTARY): how long a grace period may wait for a CPU
   * that has not passed a quiescent state before RCU's force-quiescent-state scan sets that CPU's
   * rcu_urgent_qs, after which its next tick sets TIF_NEED_RESCHED (rcu_implicit_dynticks_qs() and
   * rcu_sched_clock_irq() in kernel/rcu/tree.c). The kernel derives it from
   * jiffies_till_first_fqs + 2 * jiffies_till_next_fqs (jiffies_to_sched_qs), which grows with HZ
   * and the CPU count; 100 ms is an assumption of that order. 0 turns the forcing off.
   */
  readonly rcuUrgentQsNs: number;
  /**
   * A grace period held up this long by one CPU is an RCU CPU stall warning
   * (CONFIG_RCU_CPU_STALL_TIMEOUT, 21 s by default).
   */
  readonly rcuStallNs: number;
  /** Scheduler tick (CONFIG_HZ=1000). Assumption: a common distribution config. */
  readonly tickNs: number;
  /**
   * How long the running task keeps a CPU that another task is waiting for before the tick sets
   * TIF_NEED_RESCHED. Assumption: CFS's default sched_latency/min_granularity give slices of ~0.75
   * to 6 ms; 3 ms is taken.
   */
  readonly sliceNs: number;
  /**
   * CPU time a user task computes between two entries into the kernel (a CPU-bound neighbour that
   * only gives the CPU up at a tick). Assumption: no figure in published-figures.md.
   */
  readonly userWorkNs: number;
  /**
   * Moving a cache line that another CPU touched last into this CPU's cache (for a read, a line it
   * wrote; for a write, any line another CPU touched), for shared words that are not SPTEs: lock
   * words, reference counts, counters, list heads. Accesses that need the line queue for it, so a
   * word that many CPUs hit costs more the more of them hit it (an rwlock's reader count under a
   * fault storm, a refcount every walker bumps). SPTE prices stay as calibrated (they already
   * include their own misses). Assumption: no figure in published-figures.md; core-to-core
   * transfer latencies measured on recent x86 servers are 40-100 ns within a socket, and 60 ns is
   * taken. 0 turns contention off (every access costs its flat price).
   */
  readonly cacheLineTransferNs: number;
  /** Prices of host().cost(kind, units) kinds the model does not list above (per unit). */
  readonly extra: Readonly<Record<string, number>>;
}

export const DEFAULT_COSTS: CostModel = {
  spteReadNs: 4,
  spteWriteNs: 48,
  readNs: 2,
  writeNs: 2,
  rmwNs: 10,
  lockAcquireNs: 20,
  lockReleaseNs: 10,
  waitNs: 0,
  kfreeNs: 100,
  ptFreeNs: 500,
  ptAllocNs: 20_000,
  tlbFlushNs: 1_000,
  tlbFlushPerRunningVcpuNs: 1_100,
  tlbFlushLocalNs: 500,
  vmExitNs: 1_000,
  faultinPfnNs: 300,
  hostPageFaultNs: 20_000,
  hostPageFaultSpreadNs: 1_000,
  hostPageClearNs: 250,
  guestPageAccessNs: 100,
  contextSwitchNs: 2_000,
  wakeupNs: 5_000,
  rcuGracePeriodNs: { min: 3_000_000, max: 30_000_000 },
  rcuUrgentQsNs: 100_000_000,
  rcuStallNs: 21_000_000_000,
  tickNs: 1_000_000,
  sliceNs: 3_000_000,
  userWorkNs: 100_000,
  cacheLineTransferNs: 60,
  extra: {},
};

/** The defaults with some entries replaced. Throws on a negative or non-finite price. */
export function withCosts(over: Partial<CostModel> = {}): CostModel {
  const c: CostModel = { ...DEFAULT_COSTS, ...over, extra: { ...DEFAULT_COSTS.extra, ...over.extra } };
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === "number" && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`cost ${k} = ${v}`);
  }
  const gp = c.rcuGracePeriodNs;
  if (!(gp.min >= 0 && gp.max >= gp.min && Number.isFinite(gp.max))) {
    throw new RangeError(`rcuGracePeriodNs must satisfy 0 <= min <= max, got ${gp.min}..${gp.max}`);
  }
  if (c.tickNs <= 0) throw new RangeError("tickNs must be > 0");
  return c;
}

/**
 * What the engine knows about an object from the name the model gave it: SPTE words
 * (`<page>.spte[i]`, named by tdp_mmu_alloc_sp) and page-table pages (`sp#N(...)`, `root#N`), whose
 * kfree is priced as a page free. Allocations are priced by the model's host().cost("pt_alloc").
 */
export type ObjectClass = "spte" | "page-table" | "other";

const SPTE_NAME = /\.spte\[\d+\]$/;
const PAGE_TABLE_NAME = /^(sp#\d+\([^)]*\)|root#\d+)$/;

export function classifyObject(name: string): ObjectClass {
  if (SPTE_NAME.test(name)) return "spte";
  if (PAGE_TABLE_NAME.test(name)) return "page-table";
  return "other";
}

/** Base price of executing `op`, which touches an object of class `cls`. */
export function opCost(c: CostModel, op: AccessOp, cls: ObjectClass): number {
  switch (op.kind) {
    case "acquire":
      return c.lockAcquireNs;
    case "release":
      return c.lockReleaseNs;
    case "wait":
      return c.waitNs;
    case "read":
      return cls === "spte" ? c.spteReadNs : c.readNs;
    case "write":
      if (op.step === "kfree") return cls === "page-table" ? c.ptFreeNs : c.kfreeNs;
      return cls === "spte" ? c.spteWriteNs : c.writeNs;
    case "rmw":
      return cls === "spte" ? c.spteWriteNs : c.rmwNs;
  }
}

/** Price of `units` of a host().cost(kind) call. Unknown kinds are an error, so none is silently free. */
export function hostCost(c: CostModel, kind: string, units: number): number {
  switch (kind) {
    case "tlb_flush":
      return c.tlbFlushNs * units;
    case "user_work":
      return c.userWorkNs * units;
    case "tlb_flush_ipi":
      return c.tlbFlushPerRunningVcpuNs * units;
    case "tlb_flush_local":
      return c.tlbFlushLocalNs * units;
    case "schedule":
      return c.contextSwitchNs * units;
    case "pt_alloc":
      return c.ptAllocNs * units;
    case "vm_exit":
      return c.vmExitNs * units;
    case "faultin_pfn":
      return c.faultinPfnNs * units;
    case "host_page_fault":
      return c.hostPageFaultNs * units;
    case "host_page_fault_spread":
      return c.hostPageFaultSpreadNs * units;
    case "host_page_clear":
      return c.hostPageClearNs * units;
    case "guest_page_access":
      return c.guestPageAccessNs * units;
  }
  const p = c.extra[kind];
  if (p === undefined) throw new Error(`cost model has no price for host().cost("${kind}")`);
  return p * units;
}

/**
 * Which published figure (docs/published-figures.md id) each price was fitted to; [] for a price
 * that is an assumption or only bounded by a prior. The calibration table (npm run report,
 * docs/calibration.md) marks these figures "calibration" and every other one it compares with
 * "validation": a figure a price was fitted to is never counted as a check of the model.
 */
export const FITTED_TO: { readonly [K in Exclude<keyof CostModel, "extra">]: readonly string[] } = {
  spteReadNs: ["A2"],
  spteWriteNs: ["A2"],
  readNs: [],
  writeNs: [],
  rmwNs: [],
  lockAcquireNs: [],
  lockReleaseNs: [],
  waitNs: [],
  kfreeNs: [],
  ptFreeNs: [],
  ptAllocNs: ["E5"],
  tlbFlushNs: [],
  tlbFlushPerRunningVcpuNs: ["E1"],
  tlbFlushLocalNs: [],
  vmExitNs: ["E6"],
  faultinPfnNs: [],
  hostPageFaultNs: ["E6"],
  hostPageFaultSpreadNs: ["E6"],
  hostPageClearNs: [],
  guestPageAccessNs: [],
  contextSwitchNs: [],
  wakeupNs: [],
  rcuGracePeriodNs: ["E3"],
  rcuUrgentQsNs: [],
  rcuStallNs: ["A5"],
  tickNs: [],
  sliceNs: [],
  userWorkNs: [],
  cacheLineTransferNs: [],
};
