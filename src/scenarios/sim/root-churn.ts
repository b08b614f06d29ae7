import { modelFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { summariseLatencies } from "../../engine/sim/occupancy.js";
import { simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { kernelView } from "../../kernel/sim-view.js";
import { host_memory_backing, kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { makeVcpu } from "../../mmu/testing.js";
import type { Vcpu } from "../../mmu/types.js";
import { kvm_mmu_unload, vcpu_enter_guest, vcpu_exit_guest } from "../../mmu/vcpu.js";
import { guest_access } from "../../mmu/workloads.js";
import type { FastZapRootLoadOutcome } from "./fast-zap-root-load.js";
import { latencyMetrics, RUN_END_METRICS } from "./metric-specs.js";
import { preemptionParam } from "./params.js";
import { buildPopulatedVm, leavesFor, PAGE_SIZE } from "./populated-vm.js";
import {
  runHooks,
  type SimParamSpec,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Root churn: a guest that toggles CR0.WP over and over (grsecurity's KERNEXEC/RAP opens kernel
 * write windows that way), on a TDP host. Until 01b31714bd90 ("KVM: x86: Do not unload MMU roots
 * when only toggling CR0.WP with TDP enabled", Mathias Krause, merged for 6.4) every toggle reset the
 * MMU context: kvm_mmu_unload() dropped the vCPU's root reference under mmu_lock, and the next entry
 * loaded a root again (mmu_alloc_direct_roots(), under the write lock before 6.9). Without persistent
 * roots (before 6.4) a vCPU that held the last reference freed the root: 5.17 zapped it on the spot
 * under the write lock, 5.18-6.3 handed it to the zap worker; either way the reload allocated an
 * empty root and the guest refaulted its working set. Each vCPU owns memPerVcpu of the guest, mapped
 * by 4K SPTEs in the shared root before the run (compressed), makes `toggles` CR0.WP writes (each an
 * exit) and after each touches `refaultPages` of its pages. Runs: v5.17 and v5.18 (unload, last put
 * frees), "v6.4 unload" (persistent roots, as 6.4 would be without the CR0.WP change: the root
 * survives, the reload still takes mmu_lock) and v6.4 (no unload).
 */

const _VMM_EXIT = "cr0_write";

/**
 * kvm_post_set_cr0() (x86.c, v6.4 01b31714bd90), for a write that only toggles CR0.WP on a TDP
 * host: nothing to do from 6.4 (the TDP root's role does not depend on CR0.WP); before, the role
 * bit change resets the MMU context (kvm_mmu_reset_context(): kvm_mmu_unload(), then kvm_init_mmu(),
 * which is not priced), and the next entry reloads a root.
 */
export const kvm_post_set_cr0 = modelFn(
  "kvm_post_set_cr0",
  function* (vcpu: Vcpu, unloadOnWpToggle: boolean): Gen<void> {
    if (unloadOnWpToggle) yield* kvm_mmu_unload(vcpu);
  },
);

interface ChurnRun {
  readonly label: string;
  readonly kernel: "v5.17" | "v5.18" | "v6.4";
  readonly unload: boolean;
}

export const ROOT_CHURN_RUNS: readonly ChurnRun[] = [
  { label: "v5.17", kernel: "v5.17", unload: true },
  { label: "v5.18", kernel: "v5.18", unload: true },
  { label: "v6.4 unload", kernel: "v6.4", unload: true },
  { label: "v6.4", kernel: "v6.4", unload: false },
];

/** Per vCPU: when each toggle's exit began, when it was back in the guest, when its refault ended. */
interface ToggleMarks {
  readonly exit: Atomic;
  readonly entered: Atomic;
  readonly refaulted: Atomic;
}

function* vcpu_thread(
  vcpu: Vcpu,
  marks: ToggleMarks,
  o: { toggles: number; unload: boolean; start: number; pages: number },
): Gen<void> {
  while (!(yield* vcpu_enter_guest(vcpu))) {}
  for (let t = 0; t < o.toggles; t++) {
    yield* WRITE_ONCE(marks.exit, t + 1);
    // MOV to CR0 exits (CR0.WP is intercepted before VMX's guest-owned WP, 6.4 fb509f76acc8).
    yield* vcpu_exit_guest(vcpu);
    yield* kvm_post_set_cr0(vcpu, o.unload);
    while (!(yield* vcpu_enter_guest(vcpu))) {}
    yield* WRITE_ONCE(marks.entered, t + 1);
    for (let p = 0; p < o.pages; p++) {
      const gfn = o.start + p;
      for (let attempt = 0; attempt < 4; attempt++) {
        if (yield* guest_access(vcpu, gfn, true)) break;
        yield* vcpu_exit_guest(vcpu);
        yield* kvm_tdp_mmu_page_fault(vcpu, gfn, true);
        while (!(yield* vcpu_enter_guest(vcpu))) {}
      }
    }
    yield* WRITE_ONCE(marks.refaulted, t + 1);
  }
  yield* vcpu_exit_guest(vcpu);
}

/** Metrics and the simulator's result, as fast-zap-root-load returns them. */
export type RootChurnOutcome = FastZapRootLoadOutcome;

/** Run one era at one point. */
export function rootChurn(
  run: ChurnRun,
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): RootChurnOutcome {
  const n = Number(params.vcpus);
  const perVcpu = Number(params.memPerVcpu) / PAGE_SIZE;
  const toggles = Number(params.toggles);
  const pages = Math.min(Number(params.refaultPages), perVcpu);
  const tree = {
    kernel: run.kernel,
    preemption: params.preemption as "none" | "voluntary" | "full",
    guestSize: n * Number(params.memPerVcpu),
    rootLevel: 4 as const,
    ptesPerTable: 512,
    materialise: false,
    runningVcpus: 0,
  };
  const leaves = leavesFor(tree);
  // name:mark -> toggle -> time
  const at = new Map<string, number>();
  let faults = 0;
  let rootsAllocated = 0;
  let rootsFreed = 0;
  let allocatedBefore = 0;
  let kvmRef: ReturnType<typeof buildPopulatedVm>["kvm"] | null = null;
  const result = simulate(
    ({ spawn }) => {
      const vm = buildPopulatedVm(tree);
      kvmRef = vm.kvm;
      allocatedBefore = vm.kvm.stats.rootsAllocated;
      // The guest's memory is resident on the host: a refault is KVM's work alone.
      host_memory_backing(vm.kvm, 0, leaves, { resident: true, hugepages: false });
      vm.root.tdp_mmu_root_count.v = n + (vm.kvm.features.persistentRoots ? 1 : 0);
      for (let i = 0; i < n; i++) {
        const name = `vcpu${i}`;
        const marks = {
          exit: new Atomic(`${name}:exit`),
          entered: new Atomic(`${name}:entered`),
          refaulted: new Atomic(`${name}:refaulted`),
        };
        spawn(
          name,
          vcpu_thread(makeVcpu(vm.kvm, vm.root), marks, {
            toggles,
            unload: run.unload,
            start: i * perVcpu,
            pages,
          }),
        );
      }
    },
    {
      kernel: kernelView,
      // vCPUs on CPUs 0..n-1, one more CPU for kworkers and RCU callbacks.
      cpus: n + 1,
      costs,
      preemption: tree.preemption,
      binding: (name) => (name.startsWith("vcpu") ? Number(name.slice(4)) : null),
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      timeline: opts.timeline,
      onStep: (s, name) => {
        if (s.step === "WRITE_ONCE" && s.objName?.startsWith(`${name}:`)) {
          at.set(`${s.objName}#${at.size}`, s.startNs);
        }
      },
    },
  );
  if (result.status !== "ok" || kvmRef === null) {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`root-churn: the run ended with status ${result.status}: ${why}`);
  }
  const kvm = kvmRef as ReturnType<typeof buildPopulatedVm>["kvm"];
  faults = kvm.stats.faults;
  rootsAllocated = kvm.stats.rootsAllocated - allocatedBefore;
  rootsFreed = kvm.stats.rootsFreed;
  // Pair each vCPU's marks in order: exit_t, entered_t, refaulted_t.
  const toggleNs: number[] = [];
  const refaultNs: number[] = [];
  for (let i = 0; i < n; i++) {
    const series = (mark: string) =>
      [...at.entries()].filter(([k]) => k.startsWith(`vcpu${i}:${mark}#`)).map(([, v]) => v);
    const ex = series("exit");
    const en = series("entered");
    const rf = series("refaulted");
    for (let t = 0; t < Math.min(ex.length, en.length, rf.length); t++) {
      toggleNs.push(en[t] - ex[t]);
      refaultNs.push(rf[t] - en[t]);
    }
  }
  const tog = summariseLatencies(toggleNs);
  const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    result,
    metrics: {
      toggleMedianUs: tog === null ? null : tog.medianNs / 1e3,
      toggleP99Us: tog === null ? null : tog.p99Ns / 1e3,
      toggleMaxUs: tog === null ? null : tog.maxNs / 1e3,
      refaultUs: mean(refaultNs) === null ? null : mean(refaultNs)! / 1e3,
      faultsPerToggle: toggleNs.length === 0 ? null : faults / toggleNs.length,
      rootsAllocated,
      rootsFreed,
      totalMs: result.virtualNs / 1e6,
      events: result.events,
    },
  };
}

/**
 * Largest guest a run takes: 5.17 and 5.18 zap the whole root whenever its last vCPU lets go, and
 * 512 vCPUs x 16GiB (8TiB) took 156 s and 1.6 GiB; 64 x 16GiB takes about 21 s and 0.5 GiB.
 */
export const MAX_CHURN_GUEST_BYTES = 2 ** 40;

const PARAMS: readonly SimParamSpec[] = [
  { name: "vcpus", kind: "int", default: 1, min: 1, max: 512, doc: "vCPUs, each on a host CPU of its own" },
  {
    name: "memPerVcpu",
    kind: "size",
    default: 2 ** 30,
    min: PAGE_SIZE,
    max: 16 * 2 ** 30,
    doc: "guest memory per vCPU, mapped by 4K SPTEs in the shared root before the first toggle",
  },
  { name: "toggles", kind: "int", default: 10, min: 1, max: 1000, doc: "CR0.WP writes per vCPU" },
  {
    name: "refaultPages",
    kind: "int",
    default: 64,
    min: 0,
    max: 4096,
    doc: "pages of its own each vCPU writes after each toggle (its working set between two toggles)",
  },
  preemptionParam("voluntary"),
];

export const rootChurnScenario: SimScenario = {
  name: "root-churn",
  thread: null,
  summary:
    "root churn from CR0.WP toggles on a TDP host: time lost per toggle (exit to back in the guest) and the refault storm after it, before and after 6.4 stopped unloading roots on CR0.WP toggles (v5.17 sync zap of a freed root, v5.18 worker, 6.4 persistent roots with and without the unload)",
  params: PARAMS,
  metrics: [
    ...latencyMetrics("toggle", "over the toggles of MOV-to-CR0 exit to back in guest mode"),
    { key: "refaultUs", unit: "us", doc: "mean time to write refaultPages pages after a toggle" },
    { key: "faultsPerToggle", unit: "count", doc: "EPT violations per toggle (the refault storm)" },
    { key: "rootsAllocated", unit: "count", doc: "TDP roots allocated during the run" },
    { key: "rootsFreed", unit: "count", doc: "TDP roots freed during the run" },
    ...RUN_END_METRICS,
  ],
  headline: "toggleMedianUs",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const guest = Number(params.vcpus) * Number(params.memPerVcpu);
    if (guest > MAX_CHURN_GUEST_BYTES) {
      throw new RangeError(
        `vcpus x memPerVcpu = ${guest} bytes; at most ${MAX_CHURN_GUEST_BYTES} (1TiB) fit a run of about a minute (e.g. vcpus=64 memPerVcpu=16GiB)`,
      );
    }
    return ROOT_CHURN_RUNS.map((r) => {
      const o = rootChurn(r, params, costs, opts);
      return { label: r.label, kernel: r.kernel, params, metrics: o.metrics, results: [o.result] };
    });
  },
};
