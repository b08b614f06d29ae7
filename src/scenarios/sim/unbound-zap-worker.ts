import { host } from "../../engine/host.js";
import type { Gen } from "../../engine/op.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../../kernel/atomic.js";
import { cond_resched, hrtimer_nanosleep } from "../../kernel/sched.js";
import { kernelView } from "../../kernel/sim-view.js";
import { mutex_lock, mutex_unlock } from "../../kernel/spinlock.js";
import { kvm_mmu_zap_all_fast } from "../../mmu/tdp_mmu_invalidate.js";
import type { Kvm } from "../../mmu/types.js";
import {
  buildPopulatedVm,
  leavesFor,
  POPULATED_VM_PARAMS,
  type PopulatedVmOptions,
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
 * The async zap worker as the host sees it. A VMM thread (SCHED_FIFO, on the last CPU) deletes a
 * memslot: kvm_mmu_zap_all_fast() under slots_lock invalidates the fully populated root and, in
 * 5.18-6.5, queues its zap on tdp_mmu_zap_wq and sleeps in flush_workqueue(). That workqueue is
 * WQ_UNBOUND, so the kworker may run on any CPU the scheduler gives it, and it runs at the pool's
 * nice 0: a queued work item carries no priority, so the VMM thread's is not inherited. Meanwhile an
 * unrelated latency-sensitive thread (SCHED_FIFO, pinned to rtCpu, cyclictest-like) wakes every
 * rtPeriodUs on a timer, works rtWorkUs and sleeps again; busyCpus other CPUs run CPU-bound user
 * tasks at nice 0. In 6.6+ (0df9dab891ff) there is no worker: the VMM thread zaps in its own context.
 *
 * Each point runs, under PREEMPT_NONE and full preemption, the worker bound to CPU cpus-2 (a CPU of
 * its own, what the other scenarios assume), unbound and placed by select_idle_sibling() from the
 * CPU that queued the work (the VMM thread's, busy, so the first idle CPU after it: "unbound"), and
 * unbound but first woken on the RT thread's CPU ("unbound@rt"). The kernel's choice also depends on
 * the kworker's history (its previous CPU, wake-affine), which a fresh kworker does not have;
 * "unbound@rt" is the case where that choice is the RT thread's CPU. The RT thread then waits for the worker's next tdp_mmu_iter_cond_resched(): the worker
 * holds mmu_lock for read, so preemption is off between two yield points under either model. RCU
 * callbacks run as RCU_SOFTIRQ on the CPU that queued them (the simulator's softirqs), or in an rcuoc
 * kthread with --set rcuCallbacks=rcuoc.
 */

export type UnboundZapKernel = "v5.18" | "v6.4" | "v6.6";
export type WorkerPlacement = "bound" | "unbound" | "unbound@rt";

export interface UnboundZapParams extends PopulatedVmOptions {
  readonly kernel: UnboundZapKernel;
  readonly cpus: number;
  readonly rtCpu: number;
  readonly rtPeriodUs: number;
  readonly rtWorkUs: number;
  readonly busyCpus: number;
  /**
   * "bound": pinned to CPU cpus-2; "unbound": any CPU, woken where event order puts it;
   * "unbound@rt": any CPU, woken on rtCpu.
   */
  readonly worker: WorkerPlacement;
}

export const UNBOUND_ZAP_DEFAULTS: UnboundZapParams = {
  kernel: "v6.4",
  guestSize: 2 ** 40,
  rootLevel: 4,
  ptesPerTable: 512,
  materialise: false,
  runningVcpus: 0,
  cpus: 4,
  rtCpu: 0,
  rtPeriodUs: 1000,
  rtWorkUs: 10,
  busyCpus: 0,
  preemption: "none",
  worker: "unbound",
};

/** SCHED_FIFO above every CFS task; the kworker and the user tasks stay at 0. */
const RT_PRIORITY = 1;
const VMM = "vmm";
const RT = "rt-thread";

export interface UnboundZapOutcome {
  readonly metrics: Readonly<Record<string, number | null>>;
  readonly result: SimResult;
}

/** A CPU-bound user task at nice 0: computes, enters the kernel, gives the CPU up when asked. */
function* user_hog(stop: Atomic): Gen<void> {
  for (;;) {
    host().cost("user_work", 1);
    if ((yield* READ_ONCE(stop)) !== 0) return;
    yield* cond_resched();
  }
}

/** cyclictest's loop: sleep on a timer, do a little work, until the VMM thread is done. */
function* rt_thread(stop: Atomic, periodNs: number, workNs: number): Gen<void> {
  const sample = new Atomic("rt_sample");
  while ((yield* READ_ONCE(stop)) === 0) {
    yield* hrtimer_nanosleep(periodNs);
    host().cost("rt_work", workNs);
    yield* WRITE_ONCE(sample, sample.v + 1);
  }
}

/** KVM_SET_USER_MEMORY_REGION's fast zap, as kvm_set_memslot() runs it: under slots_lock. */
export function* vmm_thread(kvm: Kvm, stop: Atomic): Gen<void> {
  yield* mutex_lock(kvm.slots_lock);
  yield* kvm_mmu_zap_all_fast(kvm);
  yield* mutex_unlock(kvm.slots_lock);
  yield* WRITE_ONCE(stop, 1);
}

function checkLayout(p: UnboundZapParams): void {
  if (p.cpus < 3)
    throw new RangeError(`cpus must be at least 3 (RT thread, worker, VMM thread), not ${p.cpus}`);
  if (p.rtCpu > p.cpus - 3) {
    throw new RangeError(
      `rtCpu must be at most cpus - 3 = ${p.cpus - 3}: the bound worker has cpus-2, the VMM thread cpus-1`,
    );
  }
  if (p.busyCpus > p.cpus - 2) throw new RangeError(`busyCpus must be at most cpus - 2 = ${p.cpus - 2}`);
}

/** The CPUs the user tasks are pinned to: the lowest ones other than the RT thread's and the VMM's. */
function hogCpus(p: UnboundZapParams): number[] {
  const out: number[] = [];
  for (let c = 0; c < p.cpus - 1 && out.length < p.busyCpus; c++) if (c !== p.rtCpu) out.push(c);
  return out;
}

/** Run one configuration. */
export function unboundZap(
  params: Partial<UnboundZapParams>,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): UnboundZapOutcome {
  const p: UnboundZapParams = { ...UNBOUND_ZAP_DEFAULTS, ...params };
  checkLayout(p);
  const leaves = leavesFor(p);
  const hogs = hogCpus(p);
  const extraCosts: Partial<CostModel> = { ...costs, extra: { rt_work: 1, ...costs.extra } };
  const result = simulate(
    ({ spawn }) => {
      const vm = buildPopulatedVm(p);
      const stop = new Atomic("vmm_done");
      spawn(VMM, vmm_thread(vm.kvm, stop));
      spawn(RT, rt_thread(stop, p.rtPeriodUs * 1000, p.rtWorkUs * 1000));
      for (let i = 0; i < hogs.length; i++) spawn(`user-task${i}`, user_hog(stop));
    },
    {
      kernel: kernelView,
      cpus: p.cpus,
      costs: extraCosts,
      preemption: p.preemption,
      binding: (n) => {
        if (n === VMM) return p.cpus - 1;
        if (n === RT) return p.rtCpu;
        if (n.startsWith("user-task")) return hogs[Number(n.slice("user-task".length))];
        if (n.startsWith("kworker")) return p.worker === "bound" ? p.cpus - 2 : null;
        return null;
      },
      wakeCpu: (n) => (n.startsWith("kworker") && p.worker === "unbound@rt" ? p.rtCpu : null),
      priority: (n) => (n === VMM || n === RT ? RT_PRIORITY : 0),
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      timeline: opts.timeline,
    },
  );
  if (result.status !== "ok") {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`unbound-zap-worker: the run ended with status ${result.status}: ${why}`);
  }
  const task = (name: string) => result.perTask.find((t) => t.name === name)!;
  const vmm = task(VMM);
  const rt = task(RT);
  const workers = result.perTask.filter((t) => t.name.startsWith("kworker"));
  const workerCpus = new Set(workers.flatMap((w) => w.cpusUsed));
  const lat = rt.wakeLatency;
  const occ = result.perCpu.map((c) => c.occupancy);
  return {
    result,
    metrics: {
      rtWakeMaxMs: lat === null ? null : lat.maxNs / 1e6,
      rtWakeP99Us: lat === null ? null : lat.p99Ns / 1e3,
      rtWakeMedianUs: lat === null ? null : lat.medianNs / 1e3,
      rtWakeups: lat?.count ?? 0,
      zapMs: ((vmm.doneNs ?? result.virtualNs) - (vmm.firstStepNs ?? 0)) / 1e6,
      workerCpus: workerCpus.size,
      workerOnRtCpu: workerCpus.has(p.rtCpu) ? 1 : 0,
      rtCpuOccupancy: occ[p.rtCpu],
      meanCpuOccupancy: occ.reduce((a, b) => a + b, 0) / occ.length,
      leaves,
      events: result.events,
    },
  };
}

const RUNS: readonly { worker: WorkerPlacement; preemption: "none" | "full" }[] = (
  ["none", "full"] as const
).flatMap((preemption) =>
  (["bound", "unbound", "unbound@rt"] as const).map((worker) => ({ worker, preemption })),
);

const num = (params: SimParams, k: keyof UnboundZapParams): number =>
  typeof params[k] === "number" ? (params[k] as number) : (UNBOUND_ZAP_DEFAULTS[k] as number);

export const unboundZapWorkerScenario: SimScenario = {
  name: "unbound-zap-worker",
  thread: null,
  summary:
    "the async zap worker on an unbound workqueue (5.18-6.5): any CPU, nice 0 whatever its caller's priority; wake-up latency of an unrelated SCHED_FIFO thread and host-CPU occupancy, worker bound / unbound / unbound and woken on the SCHED_FIFO thread's CPU, PREEMPT_NONE vs full",
  params: [
    ...POPULATED_VM_PARAMS.map((s) =>
      s.name === "guestSize" ? { ...s, default: UNBOUND_ZAP_DEFAULTS.guestSize } : s,
    ),
    {
      name: "kernel",
      kind: "enum",
      default: "v6.4",
      values: ["v5.18", "v6.4", "v6.6"],
      doc: "v5.18/v6.4: the worker zaps; v6.6: the caller does",
    },
    {
      name: "cpus",
      kind: "int",
      default: 4,
      doc: "host CPUs (the VMM thread has the last)",
      min: 3,
      max: 512,
    },
    {
      name: "rtCpu",
      kind: "int",
      default: 0,
      doc: "CPU the SCHED_FIFO thread is pinned to (at most cpus-3)",
      min: 0,
      max: 509,
    },
    {
      name: "rtPeriodUs",
      kind: "int",
      default: 1000,
      doc: "the SCHED_FIFO thread's timer period (µs)",
      min: 1,
    },
    { name: "rtWorkUs", kind: "int", default: 10, doc: "its work per wake-up (µs)", min: 0 },
    {
      name: "busyCpus",
      kind: "int",
      default: 0,
      doc: "CPUs running a CPU-bound nice-0 user task",
      min: 0,
      max: 510,
    },
  ],
  metrics: [
    {
      key: "rtWakeMaxMs",
      unit: "ms",
      doc: "the SCHED_FIFO thread's worst wake-up latency (timer expiry to running)",
    },
    { key: "rtWakeP99Us", unit: "us", doc: "its 99th-percentile wake-up latency" },
    { key: "rtWakeMedianUs", unit: "us", doc: "its median wake-up latency" },
    { key: "rtWakeups", unit: "count", doc: "its timer wake-ups during the run" },
    { key: "zapMs", unit: "ms", doc: "the memslot deletion's fast zap, as the VMM thread waits for it" },
    { key: "workerCpus", unit: "count", doc: "distinct CPUs the zap worker ran on" },
    { key: "workerOnRtCpu", unit: "count", doc: "1 if the worker ran on the SCHED_FIFO thread's CPU" },
    { key: "rtCpuOccupancy", unit: "fraction", doc: "busy fraction of the SCHED_FIFO thread's CPU" },
    { key: "meanCpuOccupancy", unit: "fraction", doc: "busy fraction averaged over all host CPUs" },
    { key: "leaves", unit: "count", doc: "4K leaf SPTEs populated" },
    { key: "events", unit: "count", doc: "simulated events" },
  ],
  headline: "rtWakeMaxMs",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const kernel = (params.kernel as UnboundZapKernel | undefined) ?? UNBOUND_ZAP_DEFAULTS.kernel;
    const base: Partial<UnboundZapParams> = {
      kernel,
      ...populatedVmOptionsOf(params, UNBOUND_ZAP_DEFAULTS),
      cpus: num(params, "cpus"),
      rtCpu: num(params, "rtCpu"),
      rtPeriodUs: num(params, "rtPeriodUs"),
      rtWorkUs: num(params, "rtWorkUs"),
      busyCpus: num(params, "busyCpus"),
    };
    return RUNS.map((r) => {
      const o = unboundZap({ ...base, worker: r.worker, preemption: r.preemption }, costs, opts);
      return {
        label: `${r.worker}/${r.preemption}`,
        kernel,
        params: { ...params, kernel, worker: r.worker, preemption: r.preemption },
        metrics: o.metrics,
        results: [o.result],
      };
    });
  },
};
