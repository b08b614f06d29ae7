import { DEFAULT_COSTS } from "../src/engine/sim/cost-model.js";
import { Missing, ms, type Question, type StudyResult, times } from "./report-lib.js";
import { flatAcross, linearFit, scaling, sweepLine, sweptNumbers } from "./report-read.js";

/**
 * Q1–Q11 of docs/published-figures.md, each with the `tdplab simulate` studies
 * that answer it and a reading computed from their numbers. The question texts paraphrase that list.
 */

const SIZES = "1GiB,16GiB,256GiB,4TiB,64TiB";

/** One sweepLine per run label, joined. */
function everyLabel(r: StudyResult, metric: string, unit: "ms" | "plain" = "ms"): string {
  return `${r.labels.map((l) => sweepLine(r, l, metric, unit)).join("; ")}.`;
}

const A1_SYNC_MS = 900_000;
/** "A few milliseconds", generously. */
const FEW_MS = 20;
const A1_ASYNC_MS = 100;
/** A2 (derived): ≈52 ns per zapped 4K SPTE in 2022. */
const A2_NS_PER_SPTE = 52;

export const QUESTIONS: readonly Question[] = [
  {
    id: "Q1",
    title: "VM-teardown wait behind the async zap worker",
    thread: "000",
    question:
      "How long does a task that takes mmu_lock for write wait while the async worker zaps under the read " +
      "lock? Sweep PREEMPT_NONE vs PREEMPT_FULL (rwlock_needbreak() is a no-op without CONFIG_PREEMPTION), " +
      "the zap granularity, 4- vs 5-level roots, memory size, and whether the worker's CPU has other " +
      'runnable tasks. Hypothesis: "a few ms" holds only with a preemptible kernel or need_resched; with ' +
      "PREEMPT_NONE and an idle CPU the wait approaches the whole zap (~52 ns per SPTE).",
    studies: [
      {
        id: "q1-size",
        scenario: "teardown-wait",
        sweep: `guestSize=${SIZES}`,
        columns: ["teardownWaitMs", "workerZapMs", "workerYieldsBeforeTeardown", "rcuForcedResched"],
        why:
          "teardown's write_lock(mmu_lock) while the worker zaps a fully populated 5-level root, for each " +
          "preemption model (none/full) and worker CPU (idle, or shared with a CPU-bound task), as the guest grows.",
        read: (r) => {
          const p = r.points[r.points.length - 1];
          const wait = (l: string) => r.get(l, p, "teardownWaitMs");
          const few = r.labels.filter((l) => wait(l) <= FEW_MS);
          const long = r.labels.filter((l) => wait(l) > FEW_MS);
          const zap = r.get("none/idle", p, "workerZapMs");
          const noneIdle = wait("none/idle");
          const listed = r.labels.map((l) => `${l} ${ms(wait(l))}`).join(", ");
          const share = noneIdle / zap;
          const forced = r.get("none/idle", p, "rcuForcedResched");
          const urgentMs = DEFAULT_COSTS.rcuUrgentQsNs / 1e6;
          const mechanism =
            share > 0.9
              ? `With PREEMPT_NONE and nothing else on the worker's CPU, teardown waits ${(100 * share).toFixed(1)}% ` +
                `of the worker's whole zap (${ms(zap)}): nothing makes the worker drop the read lock, because ` +
                "need_resched() stays false on an idle CPU and rwlock_needbreak() is a no-op without CONFIG_PREEMPTION. "
              : forced > 0
                ? `With PREEMPT_NONE and nothing else on the worker's CPU, teardown waits ${ms(noneIdle)}, ` +
                  `${(100 * share).toFixed(3)}% of the zap (${ms(zap)}). What ends the wait is RCU: the worker frees ` +
                  "page tables with call_rcu(), so a grace period is always wanted, and the worker's own CPU, running " +
                  "kernel code without a quiescent state, holds it up. RCU's force-quiescent-state scan sets that CPU's " +
                  `rcu_urgent_qs after ${urgentMs} ms (an assumption of the order of jiffies_to_sched_qs), the next tick ` +
                  "sets need_resched(), and the worker drops mmu_lock at its next yield point " +
                  `(${forced} forced reschedules over the zap). `
                : `With PREEMPT_NONE and an idle worker CPU teardown waits ${(100 * share).toFixed(1)}% of the zap (${ms(zap)}). `;
          const verdict =
            wait("none/idle") > FEW_MS && share > 0.9 && few.length > 0
              ? " This supports Sean's objection and the hypothesis of published-figures Q1."
              : wait("none/idle") > FEW_MS && forced > 0
                ? " Sean's doubt holds in part: the wait is more than a few milliseconds, but RCU bounds it near " +
                  "rcu_urgent_qs's delay, not near the length of the zap; the hypothesis that it approaches the whole " +
                  "zap holds only if nothing forces a quiescent state (next study)."
                : "";
          return (
            `At ${p}: ${listed}. ${mechanism}` +
            `"A few milliseconds" (here: at most ${FEW_MS} ms) holds for ${few.length > 0 ? few.join(", ") : "no run"} ` +
            `and fails for ${long.length > 0 ? long.join(", ") : "no run"}; from ${r.points[r.points.length - 3]} up ` +
            `the none/idle wait is ${scaling(sweptNumbers(r), r.series("none/idle", "teardownWaitMs"), 3)} (at ` +
            `small sizes the zap is over, or nearly, before teardown asks for the lock).${verdict}`
          );
        },
      },
      {
        id: "q1-fqs",
        scenario: "teardown-wait",
        set: ["guestSize=64TiB"],
        sweep: "rcuUrgentQsNs=100ms,0",
        columns: ["teardownWaitMs", "workerZapMs", "rcuForcedResched", "rcuStalls"],
        why:
          "RCU's forced quiescent state on and off (rcuUrgentQsNs=0) at 64 TiB. Earlier builds had no such " +
          "mechanism (grace periods ended after a sampled 3–30 ms whatever the CPUs did), and answered " +
          "none/idle with the whole zap (827 s).",
        read: (r) => {
          const on = r.get("none/idle", "100ms", "teardownWaitMs");
          const off = r.get("none/idle", "0", "teardownWaitMs");
          const stalls = r.get("none/idle", "0", "rcuStalls");
          return (
            `none/idle: ${ms(on)} with the forced quiescent state, ${ms(off)} without it` +
            `${stalls > 0 ? `, which also gives ${stalls === 1 ? "an RCU CPU stall warning" : `${stalls} RCU CPU stall warnings`} (a grace period held up for 21 s by the worker's CPU)` : ""}. ` +
            "The other runs do not depend on it: a busy worker CPU yields within a slice, and a preemptible " +
            "kernel yields on rwlock_needbreak(). Changed from earlier builds: the simulator's non-preemptible " +
            "RCU now treats a CPU running kernel code as a reader until it passes a quiescent state (a context " +
            "switch, schedule(), idle), lets that CPU hold grace periods up, and forces the quiescent state the " +
            "way Tree RCU does; the 827 s none/idle answer was what a kernel without that mechanism would do."
          );
        },
      },
      {
        id: "q1-level",
        scenario: "teardown-wait",
        set: ["guestSize=4TiB"],
        sweep: "rootLevel=4,5",
        columns: ["teardownWaitMs", "workerZapMs", "workerYieldsBeforeTeardown"],
        why: "4- vs 5-level roots at 4 TiB (the seed's worry: a fully populated 5-level root).",
        read: (r) => {
          const pairs = r.labels.map(
            (l) => [l, r.get(l, "4", "teardownWaitMs"), r.get(l, "5", "teardownWaitMs")] as const,
          );
          const listed = pairs
            .map(([l, a, b]) => `${l}: ${ms(a)} (4-level) vs ${ms(b)} (5-level)`)
            .join("; ");
          const same = pairs.every(([, a, b]) => Math.abs(a - b) <= 0.05 * Math.max(a, b));
          return same
            ? `${listed}. With the same 4K leaves the root level changes the wait by less than 5%: what ` +
                "matters is the preemption model and whether anything else wants the worker's CPU."
            : `${listed}.`;
        },
      },
      {
        id: "q1-kernel",
        scenario: "teardown-wait",
        set: ["guestSize=4TiB"],
        sweep: "kernel=v5.18,v6.4",
        columns: ["teardownWaitMs", "workerZapMs"],
        why: "the two eras of the async worker (v5.18: defunct roots; v6.4: persistent roots, invalidation under RCU).",
        read: (r) =>
          `${everyLabel(r, "teardownWaitMs")}${flatAcross(r, "teardownWaitMs") ? " The era does not change the wait: both zap the same way under the read lock." : ""}`,
      },
    ],
    limits: (ok) =>
      ok
        ? "Zap granularity is not swept: both kernels teardown-wait offers zap in two passes (1 GiB regions " +
          "first); the 2024 4K→2M→1G passes (v6.9's four-pass zap) come with the end of the async worker, so " +
          "this scenario cannot pair them. The 5-level tree here holds the same 4K leaves as the 4-level one; a " +
          "5-level guest that uses its larger address space would be bigger still."
        : "The `teardown-wait` scenario is not in this build, so nothing in this section has been run.",
  },
  {
    id: "Q2",
    title: 'Where the "<100 ms" async block time comes from',
    thread: "002",
    question:
      "With the async worker, what sets the residual vCPU block time: work queuing, the new root's allocation " +
      "taking mmu_lock, a writer stuck behind the zap, or RCU? How does it depend on memory size and vCPU count?",
    studies: [
      {
        id: "q2-size",
        scenario: "defunct-root-zap",
        sweep: `guestSize=${SIZES}`,
        columns: [
          "vcpuBlockedMs",
          "workerZapMs",
          "teardownDoneMs",
          "leaves",
          "pageTables",
          "remoteTlbFlushes",
        ],
        why: "A1's experiment: a vCPU drops the last reference to a fully populated root, sync (v5.17) vs async (v5.18).",
        read: (r) => {
          const s = r.get("sync", "64TiB", "vcpuBlockedMs");
          const a = r.get("async", "64TiB", "vcpuBlockedMs");
          const w = r.get("async", "64TiB", "workerZapMs");
          return (
            `At 64 TiB the synchronous zap keeps the vCPU out of the guest for ${ms(s)}, ` +
            `${times(s, A1_SYNC_MS)} A1's "900+ s"; the sync block is ` +
            `${scaling(sweptNumbers(r), r.series("sync", "vcpuBlockedMs"))}. ` +
            `With the worker the vCPU is blocked for ${ms(a)} (A1: "<100 ms"), and that is ` +
            `${scaling(sweptNumbers(r), r.series("async", "vcpuBlockedMs"))} in the guest size, while the worker ` +
            `spends ${ms(w)} of CPU on the zap. ` +
            (a < 1
              ? "In the model the vCPU only drops its reference, marks the root and queues the work, so none of " +
                `the candidate causes is on this scenario's vCPU path: the part of A1's residual that approaches ` +
                `${ms(A1_ASYNC_MS)} must come from what the vCPU does next (below).`
              : "")
          );
        },
      },
      {
        id: "q2-vcpus",
        scenario: "defunct-root-zap",
        kernel: "v5.18",
        set: ["guestSize=64TiB"],
        sweep: "runningVcpus=0,8,64",
        columns: ["vcpuBlockedMs", "workerZapMs", "remoteTlbFlushes"],
        why: "the async block time at 64 TiB with other vCPUs running in the guest.",
        read: (r) =>
          `${sweepLine(r, "async", "vcpuBlockedMs")}; the worker: ${sweepLine(r, "async", "workerZapMs")}. ` +
          "Running vCPUs only make remote TLB flushes dearer, and the async path issues none while the vCPU waits.",
      },
    ],
    limits: () =>
      "The vCPU in `defunct-root-zap` stops after kvm_mmu_unload(): it does not load a new root " +
      "(mmu_alloc_direct_roots() under mmu_lock) or fault its memory back in, and no other writer queues behind " +
      "the worker. Those are exactly the candidate sources of A1's residual, so the model cannot yet say which " +
      "of them reaches ~100 ms; a scenario that reloads and re-faults would.",
  },
  {
    id: "Q3",
    title: "Reconciling 52 ns/SPTE (2022) with hundreds of µs per GiB (2024)",
    thread: null,
    question:
      '~52 ns per SPTE in 2022 (with struct-page A/D writeback) against "hundreds of µs per 1 GiB" in 2024, ' +
      "which needs at most a few ns per SPTE if 4K-backed. Was the 2024 case 2M-backed, or did A/D writeback go " +
      "away? Which regime is consistent with separate per-leaf and per-page-table costs?",
    studies: [
      {
        id: "q3-spte-price",
        scenario: "defunct-root-zap",
        kernel: "v5.18",
        set: ["guestSize=1GiB"],
        sweep: "spteWriteNs=1,2,4,8,16,48",
        metric: "workerZapMs",
        columns: ["workerZapMs", "teardownDoneMs", "leaves", "pageTables"],
        why: "the worker's zap time for one 4K-backed GiB as the per-SPTE write price falls from A2's 48 ns (+4 ns read).",
        read: (r) => {
          const xs = sweptNumbers(r);
          const ys = r.series("async", "workerZapMs");
          if (ys.some((y) => y === null)) throw new Missing("a workerZapMs value is missing");
          const { a, b } = linearFit(xs, ys as number[]);
          const dflt = r.get("async", `${DEFAULT_COSTS.spteWriteNs}ns`, "workerZapMs");
          const target = 0.3;
          const need = (target - a) / b;
          const perSpte = need + DEFAULT_COSTS.spteReadNs;
          const reach =
            need <= 0
              ? `not reachable with 4K leaves at any SPTE price: the fixed part alone is ${ms(a)}`
              : `a write price of ${need.toFixed(2)} ns, i.e. ~${perSpte.toFixed(1)} ns to walk and clear each 4K SPTE, ` +
                `${times(DEFAULT_COSTS.spteWriteNs + DEFAULT_COSTS.spteReadNs, perSpte)} cheaper than 2022's 52 ns`;
          return (
            `At the default prices a 4K-backed GiB takes ${ms(dflt)} of worker time. The fit over the sweep is ` +
            `${ms(a)} that does not depend on the leaf price plus ${ms(b)} per ns of SPTE write price. ` +
            `${ms(target)} per GiB ("hundreds of µs") needs ${reach}. ` +
            (need <= 0 || perSpte < 0.25 * A2_NS_PER_SPTE
              ? "That is far below what A2 measured for the same walk with A/D writeback, so with the model's " +
                "per-page-table prices the 2024 figure fits a 2M-backed guest (512 leaves per GiB instead of " +
                "262,144) better than a 4K-backed one with cheaper SPTE writes."
              : "That is within 4× of A2's 52 ns, so a 4K-backed guest with somewhat cheaper SPTE writes is plausible.")
          );
        },
      },
    ],
    limits: () =>
      "The populated VM of the timed scenarios maps memory with 4K leaves only, so the 2M-backed regime is " +
      "inferred from the fit above, not simulated; a hugepage parameter for the populated VM would settle it.",
  },
  {
    id: "Q4",
    title: "Page-table memory waiting on RCU grace periods",
    thread: null,
    question:
      "A 64 TiB all-4K root frees ~33.5M leaf page tables (≈128 GiB) through call_rcu. With the two-pass zap, " +
      "yielding and flushing deferred to RCU, what is the peak memory waiting on grace periods, and how does " +
      "it depend on the grace-period length (E3)?",
    studies: [
      {
        id: "q4-grace-period",
        scenario: "defunct-root-zap",
        kernel: "v5.18",
        set: ["guestSize=1TiB"],
        sweep: "rcuGracePeriodNs=1ms,3ms,10ms,30ms,100ms",
        metric: "teardownDoneMs",
        columns: ["teardownDoneMs", "workerZapMs", "pageTablesFreed"],
        why: "when the last page table of a 1 TiB root is freed, against a fixed grace-period length.",
        read: (r) => {
          const first = r.points[0];
          const last = r.points[r.points.length - 1];
          const tail = (p: string) => r.get("async", p, "teardownDoneMs") - r.get("async", p, "workerZapMs");
          const freed = r.get("async", first, "pageTablesFreed");
          const freeWork = (freed * DEFAULT_COSTS.ptFreeNs) / 1e6;
          const during = tail(first) < freeWork;
          return (
            `The zap itself does not depend on the grace period (workerZapMs ${ms(r.get("async", first, "workerZapMs"))} throughout). ` +
            `The last page table is freed ${ms(tail(first))} after the worker's CPU time with ${first} grace periods ` +
            `and ${ms(tail(last))} with ${last}: ${freed} page tables at ptFreeNs = ${DEFAULT_COSTS.ptFreeNs} ns are ` +
            `${ms(freeWork)} of freeing in RCU callbacks, ` +
            (during
              ? "most of it done while the zap goes on: the worker's CPU is forced through a quiescent state every " +
                `${DEFAULT_COSTS.rcuUrgentQsNs / 1e6} ms (rcu_urgent_qs), so grace periods end and callbacks run during ` +
                "the zap, and what is left at its end is the last batch plus one grace period."
              : "and the rest follows the grace-period length.")
          );
        },
      },
    ],
    limits: () =>
      "No scenario reports how many page tables wait for a grace period at the same time, so the peak " +
      "deferred memory is not measured: the numbers above give only when the last one is freed. A metric " +
      "sampling the call_rcu backlog (page tables queued but not yet freed) would answer it directly.",
  },
  {
    id: "Q5",
    title: "rwlock fairness tail: root-load latency against vCPU count",
    thread: null,
    question:
      "Predict root-load latency against vCPU count for write-lock vs read-lock root allocation and free " +
      "(the 6.9 change), and validate the worst-case curve.",
    studies: [
      {
        id: "q5-write-lock",
        scenario: "mmu-stress",
        set: ["kernel=v6.6"],
        sweep: "vcpus=1,4,16,64",
        columns: ["resetMs", "run1Ms", "run2Ms", "rootsAllocated"],
        why: "mmu_stress_test's reset stage (every vCPU toggles CR0.WP and puts its root at once) on v6.6, where roots are allocated and freed under the write lock.",
        read: (r) => `${sweepLine(r, r.labels[0], "resetMs")}.`,
      },
      {
        id: "q5-read-lock",
        scenario: "mmu-stress",
        set: ["kernel=v6.9"],
        sweep: "vcpus=1,4,16,64",
        columns: ["resetMs", "run1Ms", "run2Ms", "rootsAllocated"],
        why: "the same with v6.9's root allocation and free under the read lock.",
        read: (r) => `${sweepLine(r, r.labels[0], "resetMs")}.`,
      },
    ],
    conclude: ([w, rd]) => {
      if (w === null || rd === null) throw new Missing("both kernels");
      const l = w.labels[0];
      const n = w.points[w.points.length - 1];
      const wN = w.get(l, n, "resetMs");
      const w1 = w.get(l, w.points[0], "resetMs");
      const rN = rd.get(rd.labels[0], n, "resetMs");
      return (
        `Under the write lock the reset stage grows ${scaling(sweptNumbers(w), w.series(l, "resetMs"))} ` +
        `(${ms(w1)} at ${w.points[0]} vCPU, ${ms(wN)} at ${n})${wN > 4 * w1 ? ": the vCPUs take turns on the write lock" : ""}. Under the read ` +
        `lock it is ${scaling(sweptNumbers(rd), rd.series(rd.labels[0], "resetMs"))} (${ms(rN)} at ${n}). ` +
        "In this workload nothing else holds mmu_lock during the reset, so these are the serialisation costs alone; " +
        "the tail behind a long read-side holder is what Q1 measures."
      );
    },
    limits: () =>
      "The reset here runs with no fault or zap holding mmu_lock for read, so a root load never waits behind a " +
      "long reader, which is where the queued rwlock's fairness would show; the worst-case curve is not exercised.",
  },
  {
    id: "Q6",
    title: "When yielding hurts: invalidation against faulting vCPUs",
    thread: "001",
    question:
      "mmu_notifier invalidation against faulting vCPUs: the stalls caused by yield ping-pong plus repeated " +
      'remote flushes, the effect of the "retry before taking mmu_lock" fix, and the vCPU jitter added by ' +
      "holding mmu_lock for write versus read.",
    studies: [
      {
        id: "q6-unmap-walk",
        scenario: "root-walk",
        set: ["walk=unmap", "design=merged"],
        sweep: "preemption=none,voluntary,full",
        columns: ["walkMs", "visits", "revisits", "invalidationsDuringWalk"],
        why: "an mmu_notifier invalidation walking every root (write lock) while memslot deletions and vCPU faults contend.",
        read: (r) => `${everyLabel(r, "walkMs")}`,
      },
      {
        id: "q6-write-vs-none",
        scenario: "lockless-aging",
        set: ["vcpus=8"],
        sweep: "chunk=4KiB,64KiB,2MiB",
        columns: ["faultP99Us", "faultP50Us", "agingPassMs", "agingLockWaitMs", "notifications"],
        why: "vCPU fault latency while notifiers take mmu_lock for write once per chunk (locked) or never (lockless).",
        read: (r) => {
          const ls = r.labels;
          if (!ls.includes("locked") || !ls.includes("lockless"))
            throw new Missing("the locked and lockless runs");
          const p = r.points[0];
          const lk = r.get("locked", p, "faultP99Us");
          const lf = r.get("lockless", p, "faultP99Us");
          return (
            `${everyLabel(r, "faultP99Us", "plain")} At ${p} per notification the write-locked notifier puts the ` +
            `vCPUs' p99 fault at ${lk.toFixed(1)} µs against ${lf.toFixed(1)} µs without the lock (${times(lk, lf)}).`
          );
        },
      },
      {
        id: "q6-mprotect",
        scenario: "mmu-stress",
        set: ["kernel=v6.9"],
        sweep: "vcpus=1,4,16,64",
        columns: ["roMs", "roFaults", "rwMs", "rwFaults", "run1Ms"],
        why:
          "mmu_stress_test's mprotect stages: an mmu_notifier invalidation of all guest memory (write lock) while " +
          "every vCPU reads, then writes until -EFAULT (ro), and the reverse (rw).",
        read: (r) => {
          const l = r.labels[0];
          const p0 = r.points[0];
          const pN = r.points[r.points.length - 1];
          return (
            `ro: ${sweepLine(r, l, "roMs")}; rw: ${sweepLine(r, l, "rwMs")}. The ro stage handles ` +
            `${r.get(l, p0, "roFaults")} faults at ${p0} vCPU and ${r.get(l, pN, "roFaults")} at ${pN}.`
          );
        },
      },
    ],
    limits: () =>
      'The model has no "retry before taking mmu_lock" variant of the fault path, and the unmap walk reports ' +
      "the walker's time, not each vCPU's stall, so yield ping-pong is visible only indirectly.",
  },
  {
    id: "Q7",
    title: "Fast-zap and memslot-update latency",
    thread: null,
    question:
      "kvm_mmu_zap_all_fast() flushes the zap workqueue under slots_lock. How much of memslot-delete latency " +
      "is waiting for the previous roots' zaps, from a small 1-vCPU VM to TiB-sized all-4K guests?",
    studies: [
      {
        id: "q7-kernels",
        scenario: "mmu-stress",
        set: ["vcpus=1"],
        sweep: "kernel=v5.18,v6.4,v6.6,v6.9",
        columns: ["deleteMs", "resetMs", "workerZapMs", "rootsAllocated"],
        why: "mmu_stress_test's final deletion of the even memslots on a 1-vCPU VM, across the eras of the zap worker.",
        read: (r) => {
          const l = r.labels[0];
          const per = r.points.map((p) => `${p} ${ms(r.get(l, p, "deleteMs"))}`).join(", ");
          return `Deleting the even slots takes ${per}.`;
        },
      },
      {
        id: "q7-memory",
        scenario: "mmu-stress",
        set: ["vcpus=1", "kernel=v5.18"],
        sweep: "memory=16MiB,64MiB,256MiB",
        columns: ["deleteMs", "resetMs", "workerZapMs", "totalMs"],
        why: "the same deletion on v5.18 (async worker, flushed by the fast zap) as the guest grows.",
        read: (r) => {
          const l = r.labels[0];
          return (
            `${sweepLine(r, l, "deleteMs")}; the delete is ${scaling(sweptNumbers(r), r.series(l, "deleteMs"))}. ` +
            `The reset's worker zap (${sweepLine(r, l, "workerZapMs")}) has long finished when the slots are deleted, ` +
            "so in this workload the delete does not wait for a previous root's zap."
          );
        },
      },
    ],
    limits: () =>
      "mmu_stress_test deletes slots long after the reset's zap, so the deletion never finds the worker busy; the " +
      "question's case (a delete right behind a large zap) needs a scenario that times them back to back. Guests " +
      "that touch every page are capped at 1GiB (populate=prefault stages=reset goes further but stops before " +
      "the deletion), so the TiB end is not simulated.",
  },
  {
    id: "Q8",
    title: "Root reuse (persistent roots, edbdb43fc96b)",
    thread: null,
    question:
      "Predict the penalty of root churn (CR0.WP or SMM toggles) without persistent roots, and the benefit " +
      "against vCPU count (1-vCPU VMs suffer most, because nothing else holds the root).",
    studies: [
      {
        id: "q8-kernels",
        scenario: "mmu-stress",
        sweep: "kernel=v5.17,v5.18,v6.4",
        columns: ["resetMs", "run2Ms", "run2Faults", "rootsAllocated", "workerZapMs"],
        why: "mmu_stress_test at 4 vCPUs: the CR0.WP toggle drops every vCPU's root, then run2 writes every page again.",
        read: (r) => {
          const l = r.labels[0];
          const old = r.get(l, "v5.18", "run2Ms");
          const kept = r.get(l, "v6.4", "run2Ms");
          return (
            `run2 takes ${ms(old)} on v5.18 (${r.get(l, "v5.18", "run2Faults")} faults into a new root) and ` +
            `${ms(kept)} on v6.4 (${r.get(l, "v6.4", "run2Faults")} faults: the root survived), ${times(old, kept)} ` +
            `as long; v5.17 adds a synchronous zap to the reset (${ms(r.get(l, "v5.17", "resetMs"))}).`
          );
        },
      },
      {
        id: "q8-vcpus-v518",
        scenario: "mmu-stress",
        set: ["kernel=v5.18"],
        sweep: "vcpus=1,4,16,64",
        columns: ["resetMs", "run1Ms", "run2Ms", "run2Faults"],
        why: "the churn on v5.18 (no persistent roots) against vCPU count.",
        read: (r) => `${sweepLine(r, r.labels[0], "run2Ms")}.`,
      },
      {
        id: "q8-vcpus-v64",
        scenario: "mmu-stress",
        set: ["kernel=v6.4"],
        sweep: "vcpus=1,4,16,64",
        columns: ["resetMs", "run1Ms", "run2Ms", "run2Faults"],
        why: "the same on v6.4 (persistent roots).",
        read: (r) => `${sweepLine(r, r.labels[0], "run2Ms")}.`,
      },
    ],
    conclude: ([, old, kept]) => {
      if (old === null || kept === null) throw new Missing("both kernels");
      const rows = old.points.map((p) => {
        const penalty =
          old.get(old.labels[0], p, "resetMs") +
          old.get(old.labels[0], p, "run2Ms") -
          kept.get(kept.labels[0], p, "resetMs") -
          kept.get(kept.labels[0], p, "run2Ms");
        return { p, penalty, share: penalty / old.get(old.labels[0], p, "run1Ms") };
      });
      const first = rows[0];
      const last = rows[rows.length - 1];
      return (
        `Root churn without persistent roots costs (reset + run2, v5.18 minus v6.4) ${rows.map((x) => `${ms(x.penalty)} at ${x.p}`).join(", ")} ` +
        `vCPUs, i.e. ${(100 * first.share).toFixed(0)}% of a full write pass (run1) at ${first.p} vCPU and ` +
        `${(100 * last.share).toFixed(0)}% at ${last.p}. ${first.penalty > last.penalty ? "In absolute time a 1-vCPU VM pays the most, as the question expects, because its vCPU re-faults every page alone" : "The absolute penalty does not fall with more vCPUs here"}${Math.abs(first.share - last.share) < 0.2 ? "; relative to a write pass the penalty is about the same at every vCPU count" : ""}.`
      );
    },
    limits: () =>
      "Here every vCPU toggles CR0.WP at the same time, so no other vCPU ever keeps the old root alive; the case " +
      "where one vCPU's toggle is absorbed because others still hold the root is not simulated.",
  },
  {
    id: "Q9",
    title: "Remote-flush cost and batching",
    thread: null,
    question:
      "Model the remote-flush cost as a function of running vCPUs (E1 prior ≈73 µs at 64) and predict how " +
      "batching remote flushes changes dirty-logging disable time.",
    studies: [
      {
        id: "q9-sync-zap-flushes",
        scenario: "defunct-root-zap",
        kernel: "v5.17",
        set: ["guestSize=1TiB"],
        sweep: "runningVcpus=0,1,4,16,64",
        columns: ["vcpuBlockedMs", "remoteTlbFlushes", "pageTables"],
        why: "the v5.17 synchronous zap flushes remote TLBs as it frees page tables; running vCPUs make each flush dearer.",
        read: (r) => {
          const p0 = r.points[0];
          const pN = r.points[r.points.length - 1];
          const b0 = r.get("sync", p0, "vcpuBlockedMs");
          const bN = r.get("sync", pN, "vcpuBlockedMs");
          const flushes = r.get("sync", pN, "remoteTlbFlushes");
          const perFlushUs = ((bN - b0) / flushes) * 1000;
          return (
            `With ${pN} vCPUs running the block grows from ${ms(b0)} to ${ms(bN)} (${times(bN, b0)}). ` +
            `The zap issues ${flushes} remote flushes (one per page table it removes), each ` +
            `${perFlushUs.toFixed(1)} µs dearer at ${pN} running vCPUs. That per-flush figure is the cost model's ` +
            `E1 prior (tlbFlushPerRunningVcpuNs = ${DEFAULT_COSTS.tlbFlushPerRunningVcpuNs} ns per running vCPU), ` +
            "not an independent check of it; what the simulation adds is the count. If the zap issued one flush " +
            `instead of ${flushes}, the running vCPUs would add ≈${ms((bN - b0) / flushes)} instead of ${ms(bN - b0)}.`
          );
        },
      },
      {
        id: "q9-dirty-log",
        scenario: "dirty-log",
        sweep: "vcpus=1,4,16",
        columns: ["disableMs", "clearAvgMs", "dirtyAvgMs", "remoteTlbFlushes"],
        why: "dirty_log_perf_test (4K anonymous memory, manual protect, no PML): the phase times against vCPU count.",
        read: (r) => {
          const l = r.labels[0];
          const d = r.series(l, "disableMs").filter((x): x is number => x !== null);
          return (
            `Disable: ${sweepLine(r, l, "disableMs")}; clear per iteration: ${sweepLine(r, l, "clearAvgMs")}; ` +
            `remote flushes over the run: ${sweepLine(r, l, "remoteTlbFlushes", "plain")}.` +
            (Math.max(...d) < 0.01
              ? " With 4K backing there are no huge pages to recover when logging is disabled, so disable is all " +
                "but free and batching cannot change it in this configuration."
              : "")
          );
        },
      },
    ],
    limits: () =>
      "The dirty-log scenario backs memory with 4K pages, so disabling logging has no huge pages to recover: " +
      "the case the question is about (recovering huge pages while vCPUs run, each recovery flushing) is not " +
      "simulated; the flush model itself is the one shown above.",
  },
  {
    id: "Q10",
    title: "Locked vs lockless aging",
    thread: "004",
    question:
      "Predict aging-pass time and vCPU slowdown against vCPU count for locked vs lockless aging, and the vCPU " +
      "count at which a locked aging pass takes longer than the workload itself.",
    studies: [
      {
        id: "q10-vcpus",
        scenario: "lockless-aging",
        sweep: "vcpus=1..128",
        metric: "agingPassMs",
        columns: ["agingPassMs", "agingLockWaitMs", "faults", "faultP50Us", "faultP99Us"],
        why: "one aging pass over a young working set while N vCPUs fault in fresh memory.",
        read: (r) => {
          const lines = `${everyLabel(r, "agingPassMs")}`;
          const p = r.points[r.points.length - 1];
          const lk = r.get("locked", p, "faultP99Us");
          const lf = r.get("lockless", p, "faultP99Us");
          return (
            `Aging pass: ${lines} Fault p99 at ${p} vCPUs: ${lk.toFixed(1)} µs locked, ${lf.toFixed(1)} µs lockless. ` +
            "Changed from earlier builds: atomic accesses to shared words (mmu_lock's word, refcounts) now pay " +
            "for moving their cache line between CPUs and queue for it (cacheLineTransferNs, 60 ns, an " +
            "assumption), so every locked fault's read_lock()/read_unlock() and the pass's write_lock() get " +
            "slower as vCPUs are added; before, both designs were flat in the vCPU count."
          );
        },
      },
    ],
    limits: () =>
      "The scenario stops the vCPUs when the pass ends, so there is no workload duration to compare the pass " +
      "with: the crossover vCPU count is not computed.",
  },
  {
    id: "Q11",
    title: "Overlapping vs partitioned parallel faults",
    thread: null,
    question:
      "Parallel faults on overlapping memory got slower than on partitioned memory. Is that cmpxchg retries / " +
      "REMOVED_SPTE spinning in KVM, or contention in the primary MMU, as the author suspected?",
    studies: [],
    limits: () =>
      "No timed scenario in this build faults the same memory from several vCPUs (the memstress-style " +
      "scenarios partition it), and the primary MMU is only a price per host page fault (hostPageFaultNs), not " +
      "a shared structure with its own locks, so the model could at best bound the KVM-side share.",
  },
];
