import { host } from "../../engine/host.js";
import type { Gen } from "../../engine/op.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, type SimStepSpan, simulate } from "../../engine/sim/simulator.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../../kernel/atomic.js";
import { synchronize_rcu } from "../../kernel/rcu.js";
import { write_lock, write_unlock } from "../../kernel/rwlock.js";
import { cond_resched } from "../../kernel/sched.js";
import { kernelView } from "../../kernel/sim-view.js";
import { summarisedBlocks } from "../../mmu/compressed.js";
import { kvm_tdp_mmu_invalidate_all_roots } from "../../mmu/tdp_mmu_invalidate.js";
import type { Kvm } from "../../mmu/types.js";
import {
  buildPopulatedVm,
  leavesFor,
  POPULATED_VM_PARAMS,
  type PopulatedVm,
  populatedVmOptionsOf,
} from "./populated-vm.js";
import {
  runHooks,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Scenario 2 (seed 000, published-figures Q1/A10): VM teardown takes mmu_lock for write while the async
 * worker zaps a fully populated root under the read lock. Matlack: "it would block for at most a few
 * milliseconds waiting for the async work to reschedule"; Sean: not if the root is a fully populated
 * 5-level one, nothing else wants the worker's CPU, and CONFIG_PREEMPTION=n neuters
 * rwlock_needbreak(). The worker yields only in tdp_mmu_iter_cond_resched(), between two zapped
 * 1 GiB regions (the first pass), when need_resched() or rwlock_needbreak() says so; the simulator
 * answers both from its run queues and the lock's queue, so the wait below is what emerges.
 *
 * Tasks: an invalidator (kvm_mmu_zap_all_fast()'s first half: write lock, invalidate every root, which
 * queues the zap on the worker), the kworker (bound to CPU 1), optionally a CPU-bound user task on CPU 1,
 * and the teardown task (CPU 2): one grace period for kvm_destroy_vm()'s earlier steps (mmu_notifier
 * unregistration waits for SRCU), then kvm_mmu_uninit_tdp_mmu() taking mmu_lock for write as Matlack
 * proposed. The run ends when the worker has freed every page table.
 */

export type TeardownKernel = "v5.18" | "v6.4";

export interface TeardownWaitParams {
  readonly kernel: TeardownKernel;
  readonly guestSize: number;
  readonly rootLevel: 4 | 5;
  readonly ptesPerTable: number;
  readonly materialise: boolean;
  readonly runningVcpus: number;
  readonly preemption: "none" | "voluntary" | "full";
  /** A CPU-bound user task shares the worker's CPU. */
  readonly busy: boolean;
}

export const TEARDOWN_WAIT_DEFAULTS: TeardownWaitParams = {
  kernel: "v6.4",
  guestSize: 64 * 2 ** 40,
  rootLevel: 5,
  ptesPerTable: 512,
  materialise: false,
  runningVcpus: 0,
  preemption: "none",
  busy: false,
};

export interface TeardownWaitOutcome {
  readonly params: TeardownWaitParams;
  /** From teardown's write_lock() to holding the lock. */
  readonly teardownWaitNs: number;
  /** teardown's synchronize_rcu() before it, which the worker's CPU can hold up too. */
  readonly rcuWaitNs: number;
  /** The worker's CPU time on the zap (all of it, after teardown too). */
  readonly workerZapNs: number;
  /** Times the worker dropped mmu_lock in tdp_mmu_iter_cond_resched() before teardown got it. */
  readonly workerYieldsBeforeTeardown: number;
  readonly leaves: number;
  readonly result: SimResult;
  readonly summarisedBlocks: number;
}

/** A CPU-bound user task: computes, enters the kernel, and gives the CPU up only when asked to. */
function* cpu_hog(stop: Atomic): Gen<void> {
  for (;;) {
    host().cost("user_work", 1);
    if ((yield* READ_ONCE(stop)) !== 0) return;
    yield* cond_resched();
  }
}

/** kvm_mmu_zap_all_fast()'s invalidation (v6.4 edbdb43fc96b order): write lock, invalidate, unlock. */
function* invalidator(kvm: Kvm): Gen<void> {
  yield* write_lock(kvm.mmu_lock);
  yield* kvm_tdp_mmu_invalidate_all_roots(kvm);
  yield* write_unlock(kvm.mmu_lock);
}

/** The teardown path up to kvm_mmu_uninit_tdp_mmu() with Matlack's mmu_lock (seed 000). */
function* teardown(kvm: Kvm, stop: Atomic): Gen<void> {
  // kvm_destroy_vm(): mmu_notifier_unregister() waits for a grace period first.
  yield* synchronize_rcu();
  yield* write_lock(kvm.mmu_lock);
  yield* kvm_tdp_mmu_invalidate_all_roots(kvm);
  yield* write_unlock(kvm.mmu_lock);
  yield* WRITE_ONCE(stop, 1);
}

/** Run the scenario once. */
export function teardownWait(
  params: Partial<TeardownWaitParams>,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): TeardownWaitOutcome {
  const p: TeardownWaitParams = { ...TEARDOWN_WAIT_DEFAULTS, ...params };
  const leaves = leavesFor(p);
  let vm: PopulatedVm | null = null;
  let start: number | null = null;
  let attempt: number | null = null;
  let acquired: number | null = null;
  let yields = 0;
  let lastAcquireEnd = 0;
  const onStep = (s: SimStepSpan, name: string): void => {
    if (name === "teardown") {
      if (start === null) start = s.startNs;
      if (attempt === null && s.step === "write_lock") attempt = s.startNs;
      if (attempt === null || acquired !== null) return;
      // write_lock() is one step, or several on the slow path (the acquires and the atomic_or of
      // _QW_WAITING between them); the lock is held after the last of them.
      if (s.objName === "kvm.mmu_lock" && s.step.startsWith("write_lock")) lastAcquireEnd = s.endNs;
      else acquired = lastAcquireEnd;
    } else if (acquired === null && name.startsWith("kworker") && s.step === "read_unlock") {
      yields++;
    }
  };
  const result = simulate(
    ({ spawn }) => {
      vm = buildPopulatedVm(p);
      const stop = new Atomic("teardown_done");
      spawn("invalidator", invalidator(vm.kvm));
      if (p.busy) spawn("user-task", cpu_hog(stop));
      spawn("teardown", teardown(vm.kvm, stop));
    },
    {
      kernel: kernelView,
      cpus: 4,
      costs,
      preemption: p.preemption,
      binding: (n) =>
        n.startsWith("kworker") || n === "user-task" ? 1 : n === "teardown" || n === "invalidator" ? 2 : null,
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      timeline: opts.timeline,
      onStep,
    },
  );
  const built = vm as PopulatedVm | null;
  if (result.status !== "ok" || built === null || start === null || attempt === null || acquired === null) {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`teardown-wait: the run ended with status ${result.status}: ${why}`);
  }
  const worker = result.perTask.find((t) => t.name.startsWith("kworker"));
  return {
    params: p,
    teardownWaitNs: (acquired as number) - (attempt as number),
    rcuWaitNs: (attempt as number) - (start as number),
    workerZapNs: worker?.busyNs ?? 0,
    workerYieldsBeforeTeardown: yields,
    leaves,
    result,
    summarisedBlocks: summarisedBlocks(built.kvm),
  };
}

const VARIANTS: readonly { label: string; preemption: "none" | "full"; busy: boolean }[] = [
  { label: "none/idle", preemption: "none", busy: false },
  { label: "none/busy", preemption: "none", busy: true },
  { label: "full/idle", preemption: "full", busy: false },
  { label: "full/busy", preemption: "full", busy: true },
];

export const teardownWaitScenario: SimScenario = {
  name: "teardown-wait",
  thread: "000",
  summary:
    "teardown takes mmu_lock for write while the async worker zaps a fully populated root: runs per preemption model (none/full) and worker CPU (idle/busy)",
  params: [
    ...POPULATED_VM_PARAMS.map((s) => (s.name === "rootLevel" ? { ...s, default: 5 } : s)),
    {
      name: "kernel",
      kind: "enum",
      default: "v6.4",
      values: ["v5.18", "v6.4"],
      doc: "era of the async zap worker",
    },
    {
      name: "runs",
      kind: "enum",
      default: "all",
      values: ["all", ...VARIANTS.map((v) => v.label)],
      doc: "the preemption/worker-CPU runs to make: all four (about 27 s each at 64TiB), or one of them",
    },
  ],
  metrics: [
    { key: "teardownWaitMs", unit: "ms", doc: "from teardown's write_lock(mmu_lock) to holding it" },
    {
      key: "rcuWaitMs",
      unit: "ms",
      doc: "teardown's synchronize_rcu() before it (kvm_destroy_vm's earlier steps)",
    },
    { key: "workerZapMs", unit: "ms", doc: "the worker's CPU time on the whole zap" },
    {
      key: "workerYieldsBeforeTeardown",
      unit: "count",
      doc: "times the worker dropped the lock before teardown got it",
    },
    { key: "leaves", unit: "count", doc: "4K leaf SPTEs populated" },
    {
      key: "rcuForcedResched",
      unit: "count",
      doc: "need_resched() set only because RCU wanted a quiescent state from a CPU (rcu_urgent_qs)",
    },
    { key: "rcuStalls", unit: "count", doc: "RCU CPU stall warnings (a grace period held up for 21 s)" },
    { key: "events", unit: "count", doc: "simulated events" },
  ],
  headline: "teardownWaitMs",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const kernel = (params.kernel as TeardownKernel | undefined) ?? TEARDOWN_WAIT_DEFAULTS.kernel;
    const base = { kernel, ...populatedVmOptionsOf(params, TEARDOWN_WAIT_DEFAULTS) };
    const chosen =
      params.runs === undefined || params.runs === "all"
        ? VARIANTS
        : VARIANTS.filter((v) => v.label === params.runs);
    return chosen.map((v) => {
      const o = teardownWait({ ...base, preemption: v.preemption, busy: v.busy }, costs, opts);
      return {
        label: v.label,
        kernel,
        params: { ...params, kernel, preemption: v.preemption, busy: v.busy },
        metrics: {
          teardownWaitMs: o.teardownWaitNs / 1e6,
          rcuWaitMs: o.rcuWaitNs / 1e6,
          workerZapMs: o.workerZapNs / 1e6,
          workerYieldsBeforeTeardown: o.workerYieldsBeforeTeardown,
          leaves: o.leaves,
          rcuForcedResched: o.result.stats.rcuForcedResched,
          rcuStalls: o.result.rcuStalls.length,
          events: o.result.events,
        },
        results: [o.result],
      };
    });
  },
};
