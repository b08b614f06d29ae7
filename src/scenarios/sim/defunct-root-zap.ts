import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { kernelView } from "../../kernel/sim-view.js";
import { summarisedBlocks } from "../../mmu/compressed.js";
import { makeVcpu } from "../../mmu/testing.js";
import { kvm_mmu_unload } from "../../mmu/vcpu.js";
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
 * Scenario 1 (seed 002, published-figures A1): a vCPU drops the last reference to a fully populated root
 * through kvm_mmu_unload(). v5.17 zaps the root inside the put, holding mmu_lock for write, so the
 * vCPU is out of the guest for the whole zap ("900+ s" at 64 TiB); v5.18 (efd995dae5eb) marks it
 * defunct and queues the zap on a worker ("<100 ms"). The vCPU, the kworker and the RCU callbacks
 * all run the real model functions; the tree is compressed unless materialise=true.
 */

export type DefunctRootZapKernel = "v5.17" | "v5.18";

export interface DefunctRootZapParams {
  readonly kernel: DefunctRootZapKernel;
  readonly guestSize: number;
  readonly rootLevel: 4 | 5;
  readonly ptesPerTable: number;
  readonly materialise: boolean;
  readonly runningVcpus: number;
  /** Host CPUs of the simulated machine. */
  readonly cpus: number;
  readonly preemption: "none" | "voluntary" | "full";
}

export const DEFUNCT_ROOT_ZAP_DEFAULTS: Omit<DefunctRootZapParams, "kernel"> = {
  guestSize: 64 * 2 ** 40,
  rootLevel: 4,
  ptesPerTable: 512,
  materialise: false,
  runningVcpus: 0,
  cpus: 4,
  preemption: "none",
};

export interface DefunctRootZapMetrics {
  /** First to last step of the vCPU: the time it is out of the guest (A1's block time). */
  readonly vcpuBlockedMs: number;
  /** CPU time of the kworker that zapped the root, or null when no worker ran (the sync zap). */
  readonly workerZapMs: number | null;
  /** When the last page table was freed (the RCU callbacks included). */
  readonly teardownDoneMs: number;
  readonly leaves: number;
  /** Page tables of the tree, root included. */
  readonly pageTables: number;
  readonly pageTablesFreed: number;
  readonly remoteTlbFlushes: number;
  readonly events: number;
  /** Subtrees torn down as one bulk access (0 on a materialised tree). */
  readonly summarisedBlocks: number;
}

export interface DefunctRootZapOutcome {
  readonly label: "sync" | "async";
  readonly kernel: DefunctRootZapKernel;
  readonly params: DefunctRootZapParams;
  readonly metrics: DefunctRootZapMetrics;
  /** vcpuBlockedMs in exact virtual nanoseconds. */
  readonly vcpuBlockedNs: number;
  readonly result: SimResult;
}

/** Run the scenario once. Deterministic: same parameters, costs and seed, same result. */
export function defunctRootZap(
  params: Partial<DefunctRootZapParams> & { kernel: DefunctRootZapKernel },
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): DefunctRootZapOutcome {
  const p: DefunctRootZapParams = { ...DEFUNCT_ROOT_ZAP_DEFAULTS, ...params };
  leavesFor(p);
  let vm: PopulatedVm | null = null;
  const result = simulate(
    ({ spawn }) => {
      vm = buildPopulatedVm(p);
      spawn("vcpu0", kvm_mmu_unload(makeVcpu(vm.kvm, vm.root)));
    },
    {
      kernel: kernelView,
      cpus: p.cpus,
      costs,
      preemption: p.preemption,
      binding: (n) => (n === "vcpu0" ? 0 : null),
      seed: opts.seed ?? 2,
      ...runHooks(opts),
      timeline: opts.timeline,
    },
  );
  const built = vm as PopulatedVm | null;
  if (built === null) throw new Error("defunct-root-zap: setup did not run");
  const vcpu = result.perTask.find((t) => t.name === "vcpu0");
  if (result.status !== "ok" || vcpu?.doneNs == null || vcpu.firstStepNs == null) {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`defunct-root-zap: the run ended with status ${result.status}: ${why}`);
  }
  const vcpuBlockedNs = vcpu.doneNs - vcpu.firstStepNs;
  const worker = result.perTask.find((t) => t.name.startsWith("kworker:"));
  const kvm = built.kvm;
  return {
    label: p.kernel === "v5.17" ? "sync" : "async",
    kernel: p.kernel,
    params: p,
    metrics: {
      vcpuBlockedMs: vcpuBlockedNs / 1e6,
      workerZapMs: worker === undefined ? null : worker.busyNs / 1e6,
      teardownDoneMs: result.virtualNs / 1e6,
      leaves: built.leaves,
      pageTables: built.pageTables,
      pageTablesFreed: kvm.stats.pagesFreed + kvm.stats.rootsFreed,
      remoteTlbFlushes: kvm.stats.remoteTlbFlushes,
      events: result.events,
      summarisedBlocks: summarisedBlocks(kvm),
    },
    vcpuBlockedNs,
    result,
  };
}

const RUNS: readonly { label: "sync" | "async"; kernel: DefunctRootZapKernel }[] = [
  { label: "sync", kernel: "v5.17" },
  { label: "async", kernel: "v5.18" },
];

export const defunctRootZapScenario: SimScenario = {
  name: "defunct-root-zap",
  thread: "002",
  summary:
    "a vCPU drops the last reference to a fully populated root: v5.17 zaps it in the put (run sync), v5.18 queues the zap on a worker (run async)",
  params: [
    ...POPULATED_VM_PARAMS,
    { name: "cpus", kind: "int", default: 4, doc: "host CPUs of the simulated machine", min: 1, max: 512 },
    {
      name: "preemption",
      kind: "enum",
      default: "none",
      values: ["none", "voluntary", "full"],
      doc: "CONFIG_PREEMPT model",
    },
  ],
  metrics: [
    { key: "vcpuBlockedMs", unit: "ms", doc: "the vCPU's time out of the guest (A1)" },
    { key: "workerZapMs", unit: "ms", doc: "CPU time of the zap worker (async only)" },
    { key: "teardownDoneMs", unit: "ms", doc: "virtual time until the last page table was freed" },
    { key: "leaves", unit: "count", doc: "4K leaf SPTEs populated" },
    { key: "pageTables", unit: "count", doc: "page tables in the tree, root included" },
    { key: "pageTablesFreed", unit: "count", doc: "page tables and roots freed by the end" },
    { key: "remoteTlbFlushes", unit: "count", doc: "remote TLB flushes" },
    { key: "events", unit: "count", doc: "simulated events (bulk accesses count the steps they stand for)" },
    { key: "summarisedBlocks", unit: "count", doc: "subtrees torn down as one bulk access" },
  ],
  headline: "vcpuBlockedMs",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const p = toParams(params);
    return RUNS.map(({ kernel }) => {
      const o = defunctRootZap({ ...p, kernel }, costs, opts);
      return {
        label: o.label,
        kernel,
        params: { ...params, kernel },
        metrics: { ...o.metrics },
        results: [o.result],
      };
    });
  },
};

function toParams(params: SimParams): Omit<DefunctRootZapParams, "kernel"> {
  const d = DEFUNCT_ROOT_ZAP_DEFAULTS;
  return {
    ...populatedVmOptionsOf(params, d),
    cpus: typeof params.cpus === "number" ? params.cpus : d.cpus,
    preemption: (params.preemption as DefunctRootZapParams["preemption"] | undefined) ?? d.preemption,
  };
}
