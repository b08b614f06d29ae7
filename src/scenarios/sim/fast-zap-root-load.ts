import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { summariseLatencies } from "../../engine/sim/occupancy.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { Atomic, atomic_fetch_add } from "../../kernel/atomic.js";
import { kernelView } from "../../kernel/sim-view.js";
import { makeVcpu } from "../../mmu/testing.js";
import type { Vcpu } from "../../mmu/types.js";
import { IN_GUEST_MODE, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "../../mmu/vcpu.js";
import { preemptionParam } from "./params.js";
import { buildPopulatedVm, leavesFor, PAGE_SIZE, POPULATED_VM_PARAMS } from "./populated-vm.js";
import {
  runHooks,
  type SimParamSpec,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";
import { vmm_thread } from "./unbound-zap-worker.js";

/**
 * vCPU root loads during a fast zap. A VM of `vcpus` vCPUs, each with `memPerVcpu` of guest memory
 * mapped by 4K SPTEs in the one shared TDP root (compressed, src/mmu/compressed.ts), every vCPU in
 * guest mode on its own CPU. The VMM thread deletes a memslot: kvm_mmu_zap_all_fast() under
 * slots_lock invalidates the root and kicks every vCPU (KVM_REQ_MMU_RELOAD before 5.18,
 * KVM_REQ_MMU_FREE_OBSOLETE_ROOTS after), then zaps the invalid root: itself under the write lock in
 * 5.17, through tdp_mmu_zap_wq in 5.18-6.5, itself under the read lock from 6.6. Each kicked vCPU
 * frees its obsolete root and loads a new one: under the write mmu_lock before 6.9, under the read
 * lock from 6.9 (kvm_tdp_mmu_alloc_root()). A vCPU's root-load latency runs from the kick to the
 * vCPU being back in guest mode on its new root; its median and tail against the vCPU count, per
 * era, is what the scenario answers. The vCPUs' guests then fault nothing (the load itself is
 * measured, not the refault storm after it).
 */

export const FAST_ZAP_ROOT_LOAD_KERNELS = ["v5.17", "v5.18", "v6.6", "v6.9"] as const;
type Kernel = (typeof FAST_ZAP_ROOT_LOAD_KERNELS)[number];

const VMM = "vmm";

/**
 * Largest guest the v6.9 run simulates. 6.9 zaps 4K leaves first, then 2M, 1G and the root
 * (zapPasses "four-pass"), so no subtree reaches handle_removed_pt() untouched and the compressed
 * tree cannot stand a bulk access for it: every SPTE is an event (about 60 s for 8 GiB on one core).
 */
export const MAX_FOUR_PASS_BYTES = 4 * 2 ** 30;

/** The vCPU thread: enter, run the guest until kicked, leave, enter again (reloading), count. */
function* vcpu_thread(vcpu: Vcpu, entered: Atomic, reloaded: Atomic): Gen<void> {
  while (!(yield* vcpu_enter_guest(vcpu))) {}
  yield* atomic_fetch_add(entered, 1);
  const mode = vcpu_mode(vcpu);
  yield {
    kind: "wait",
    obj: mode.id,
    objs: mode.deps === undefined ? undefined : [...mode.deps],
    fn: currentFn(),
    step: "guest runs until kicked",
    enabled: () => mode.v !== IN_GUEST_MODE,
  };
  yield* vcpu_exit_guest(vcpu);
  while (!(yield* vcpu_enter_guest(vcpu))) {}
  yield* atomic_fetch_add(reloaded, 1);
  yield* vcpu_exit_guest(vcpu);
}

/** The VMM deletes the memslot once every vCPU is in the guest. */
function* vmm(vm: ReturnType<typeof buildPopulatedVm>, entered: Atomic, n: number): Gen<void> {
  yield {
    kind: "wait",
    obj: entered.id,
    fn: "vmm",
    step: "wait for every vCPU in guest mode",
    enabled: () => entered.v >= n,
  };
  yield* vmm_thread(vm.kvm, new Atomic("vmm_done"));
}

export interface FastZapRootLoadOutcome {
  readonly metrics: Readonly<Record<string, number | null>>;
  readonly result: SimResult;
}

/** Run one era at one point. */
export function fastZapRootLoad(
  kernel: Kernel,
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): FastZapRootLoadOutcome {
  const n = Number(params.vcpus);
  const tree = {
    kernel,
    preemption: params.preemption as "none" | "voluntary" | "full",
    guestSize: n * Number(params.memPerVcpu),
    rootLevel: (Number(params.rootLevel) === 5 ? 5 : 4) as 4 | 5,
    ptesPerTable: Number(params.ptesPerTable),
    materialise: params.materialise === true,
    runningVcpus: 0,
  };
  const leaves = leavesFor(tree);
  let kickNs: number | null = null;
  const reloadNs = new Map<string, number>();
  const result = simulate(
    ({ spawn }) => {
      const vm = buildPopulatedVm(tree);
      // Every vCPU holds a reference to the root, and from 6.4 the TDP MMU holds one of its own.
      vm.root.tdp_mmu_root_count.v = n + (vm.kvm.features.persistentRoots ? 1 : 0);
      const entered = new Atomic("vcpus_entered");
      const reloaded = new Atomic("vcpus_reloaded");
      for (let i = 0; i < n; i++)
        spawn(`vcpu${i}`, vcpu_thread(makeVcpu(vm.kvm, vm.root), entered, reloaded));
      spawn(VMM, vmm(vm, entered, n));
    },
    {
      kernel: kernelView,
      // vCPUs on CPUs 0..n-1, the VMM thread on n, one more CPU for kworkers (free).
      cpus: n + 2,
      costs,
      preemption: tree.preemption,
      binding: (name) => (name.startsWith("vcpu") ? Number(name.slice(4)) : name === VMM ? n : null),
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      timeline: opts.timeline,
      onStep: (s, name) => {
        if (name === VMM && kickNs === null && s.fn === "kvm_make_all_cpus_request") kickNs = s.startNs;
        if (name.startsWith("vcpu") && s.fn === "<task>" && s.objName === "vcpus_reloaded")
          reloadNs.set(name, s.startNs);
      },
    },
  );
  if (result.status !== "ok") {
    const why = result.violations[0]?.message ?? result.unfinished.join(", ");
    throw new Error(`fast-zap-root-load: the run ended with status ${result.status}: ${why}`);
  }
  const kick = kickNs ?? 0;
  const lat = summariseLatencies([...reloadNs.values()].map((t) => t - kick));
  const vmmTask = result.perTask.find((t) => t.name === VMM)!;
  return {
    result,
    metrics: {
      rootLoadMedianUs: lat === null ? null : lat.medianNs / 1e3,
      rootLoadP99Us: lat === null ? null : lat.p99Ns / 1e3,
      rootLoadMaxUs: lat === null ? null : lat.maxNs / 1e3,
      vcpusReloaded: reloadNs.size,
      zapMs: ((vmmTask.doneNs ?? result.virtualNs) - kick) / 1e6,
      leaves,
      events: result.events,
    },
  };
}

const PARAMS: readonly SimParamSpec[] = [
  { name: "vcpus", kind: "int", default: 8, min: 1, max: 512, doc: "vCPUs, each on a host CPU of its own" },
  {
    name: "memPerVcpu",
    kind: "size",
    default: 2 ** 30,
    min: PAGE_SIZE,
    max: 16 * 2 ** 30,
    doc: "guest memory per vCPU, mapped by 4K SPTEs in the shared root before the deletion",
  },
  ...POPULATED_VM_PARAMS.filter((s) => ["rootLevel", "ptesPerTable", "materialise"].includes(s.name)),
  preemptionParam("voluntary"),
];

export const fastZapRootLoadScenario: SimScenario = {
  name: "fast-zap-root-load",
  thread: null,
  summary:
    "vCPU root loads during a fast zap (memslot deletion): root-load latency (kick to back in the guest), median and tail, against the vCPU count, per era (5.17 sync zap, 5.18 worker, 6.6 caller under the read lock, 6.9 roots allocated under the read lock)",
  params: PARAMS,
  metrics: [
    { key: "rootLoadMedianUs", unit: "us", doc: "median over the vCPUs of kick to back in guest mode" },
    { key: "rootLoadP99Us", unit: "us", doc: "its 99th percentile" },
    { key: "rootLoadMaxUs", unit: "us", doc: "its maximum (the last vCPU)" },
    { key: "vcpusReloaded", unit: "count", doc: "vCPUs that loaded a new root" },
    { key: "zapMs", unit: "ms", doc: "kick to the end of the memslot deletion (the VMM thread)" },
    { key: "leaves", unit: "count", doc: "4K leaf SPTEs in the root" },
    { key: "events", unit: "count", doc: "simulated events" },
  ],
  headline: "rootLoadP99Us",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const guest = Number(params.vcpus) * Number(params.memPerVcpu);
    return FAST_ZAP_ROOT_LOAD_KERNELS.map((kernel) => {
      if (kernel === "v6.9" && guest > MAX_FOUR_PASS_BYTES) {
        // Not run rather than run for minutes: the row says so with every metric empty.
        const metrics = Object.fromEntries(this.metrics.map((m) => [m.key, null]));
        return { label: `${kernel} (not run: four-pass zap > 4GiB)`, kernel, params, metrics };
      }
      const o = fastZapRootLoad(kernel, params, costs, opts);
      return { label: kernel, kernel, params, metrics: o.metrics, results: [o.result] };
    });
  },
};
