import type { Gen } from "../../engine/op.js";
import type { Program } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { list_add_rcu, list_add_tail_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { populate_compressed } from "../../mmu/compressed.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "../../mmu/kvm_destroy.js";
import {
  kvm_nx_huge_page_recovery_worker,
  NX_HUGE_PAGES_RECOVERY_RATIO,
} from "../../mmu/nx_huge_page_recovery.js";
import { spte_to_pfn } from "../../mmu/spte.js";
import { SPTE_INDEX } from "../../mmu/tdp_iter.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { host_memory_backing } from "../../mmu/tdp_mmu_map.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm } from "../../mmu/testing.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { vcpuPopulateTask } from "../../mmu/workloads.js";
import { faultLatencies, percentile } from "./lockless-aging.js";
import { RUN_END_METRICS } from "./metric-specs.js";
import { preemptionParam } from "./params.js";
import { PAGE_SIZE } from "./populated-vm.js";
import {
  runHooks,
  type SimParamSpec,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * NX huge page recovery against faulting vCPUs (issue 16). With the iTLB multihit mitigation
 * (kvm.nx_huge_pages=on) every guest fetch from memory the host backs with 2M pages maps 4K, and
 * the leaf table that fetch needed goes on possible_nx_huge_pages. The scenario starts from a guest
 * of vcpus x memPerVcpu whose memory was all split that way (one listed 4K table per 2M, compressed
 * tree, listed in the interleaved order concurrent vCPUs would have faulted them in), and runs one
 * wake-up of kvm_nx_huge_page_recovery_worker() (zapping 1/ratio of the list) while every vCPU keeps
 * demand-faulting fresh 4K memory of its own, each fault an EPT violation handled under the read
 * mmu_lock. The vCPUs stop when the worker is done. Two runs, differing only in
 * features.nxRecoveryUnderReadLock:
 * - "write lock" (to 6.17): the worker holds mmu_lock for write for its whole pass unless
 *   need_resched()/rwlock_needbreak() ask it to yield, so faults queue behind it;
 * - "read lock" (6.18, a57750909580): the worker holds mmu_lock for read and takes each page off the
 *   list under tdp_mmu_pages_lock, so faults proceed beside it.
 * The protocol is the model's own (src/mmu/nx_huge_page_recovery.ts); this file only builds the VM.
 */

export const NX_RECOVERY_RUNS = [
  { label: "write lock (<=6.17)", readLock: false },
  { label: "read lock (6.18)", readLock: true },
] as const;

const WORKER = "nx-recovery";
/** gfns each vCPU may demand-fault (its fresh region beyond the split memory). */
const REGION_PAGES = 1 << 18;
/** 4K leaves under one 2M table. */
const TABLE_PAGES = 512;

/**
 * Largest split guest a run takes. Listed tables are zapped SPTE by SPTE (never as summarised
 * blocks) and the timeline is always kept for the fault latencies: 32GiB took 10.6 s and 0.45 GiB,
 * 1TiB passed 4 GiB of RSS.
 */
export const MAX_NX_GUEST_BYTES = 64 * 2 ** 30;

/** The level-1 table that maps `gfn` in `root` (building lazy pages on the way: setup only). */
function leafTableOf(kvm: Kvm, root: KvmMmuPage, gfn: number): KvmMmuPage {
  let sp = root;
  while (sp.level > 1) {
    const word = sp.spt[SPTE_INDEX(kvm, gfn, sp.level)];
    sp = kvm.pages.get(spte_to_pfn(word.v))!;
  }
  return sp;
}

/**
 * What the NX-split guest leaves behind: every 4K table on possible_nx_huge_pages, flagged
 * nx_huge_page_disallowed and counted in nx_lpage_splits, in the order vCPUs faulting side by side
 * would have listed them (round robin over the vCPUs' regions). Setup-time, so not priced.
 */
function listSplitTables(kvm: Kvm, root: KvmMmuPage, vcpus: number, tablesPerVcpu: number): void {
  const nx = kvm.nx!;
  for (let t = 0; t < tablesPerVcpu; t++) {
    for (let v = 0; v < vcpus; v++) {
      const sp = leafTableOf(kvm, root, (v * tablesPerVcpu + t) * TABLE_PAGES);
      sp.nx_huge_page_disallowed = true;
      drive(list_add_tail_rcu(sp.possible_nx_huge_page_link!, nx.possible_nx_huge_pages));
      nx.nx_lpage_splits.v++;
    }
  }
}

/** The worker: one wake-up, then the guests are told to stop. */
function* recoveryWorker(kvm: Kvm, stop: Atomic): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  yield* kvm_nx_huge_page_recovery_worker(kvm);
  yield* WRITE_ONCE(stop, 1);
  yield* kvm_put_kvm(kvm);
}

interface NxConfig {
  readonly readLock: boolean;
  readonly vcpus: number;
  readonly tablesPerVcpu: number;
  readonly ratio: number;
  readonly preemption: "none" | "voluntary" | "full";
}

function program(c: NxConfig, onKvm: (kvm: Kvm) => void): Program {
  return ({ spawn }) => {
    const kvm = makeVm({
      kernel: "v6.15",
      features: { nxRecoveryUnderReadLock: c.readLock },
      ptes: 512,
      rootLevel: 4,
      machine: { ...simMachineConfig(c.preemption), proveMmu: false },
      checks: false,
      nxRecoveryRatio: c.ratio,
    });
    onKvm(kvm);
    kvm_mmu_init_tdp_mmu(kvm);
    // The TDP MMU's own reference (persistent roots) plus one per vCPU.
    const root = makeRoot(kvm, 1 + c.vcpus);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    ghost_root_published(kvm, root);
    const split = c.vcpus * c.tablesPerVcpu * TABLE_PAGES;
    populate_compressed(kvm, root, split);
    listSplitTables(kvm, root, c.vcpus, c.tablesPerVcpu);
    // The split memory is THP-backed (that is why it could be mapped huge); the fresh memory is
    // anonymous 4K, allocated by the host on first touch, as in the selftests.
    host_memory_backing(kvm, 0, split, { resident: true, hugepages: true });
    host_memory_backing(kvm, split, split + c.vcpus * REGION_PAGES, { resident: false, hugepages: false });
    const stop = new Atomic("scenario.stop", 0, null);
    for (let v = 0; v < c.vcpus; v++) {
      const start = split + v * REGION_PAGES;
      spawn(`vcpu${v}`, vcpuPopulateTask(makeVcpu(kvm, root), { start, end: start + REGION_PAGES, stop }));
    }
    spawn(WORKER, recoveryWorker(kvm, stop));
  };
}

/** One run (write or read lock) at one parameter point. Deterministic. */
export function runNxRecovery(
  run: (typeof NX_RECOVERY_RUNS)[number],
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): SimScenarioRun {
  const c: NxConfig = {
    readLock: run.readLock,
    vcpus: Number(params.vcpus),
    tablesPerVcpu: Number(params.memPerVcpu) / (TABLE_PAGES * PAGE_SIZE),
    ratio: Number(params.ratio),
    preemption: params.preemption as NxConfig["preemption"],
  };
  let kvm: Kvm | null = null;
  const listedBefore = c.vcpus * c.tablesPerVcpu;
  const full = simulate(
    program(c, (k) => {
      kvm = k;
    }),
    {
      kernel: kernelView,
      // vCPUs on CPUs 0..n-1, the worker (and RCU callbacks) on CPU n.
      cpus: c.vcpus + 1,
      preemption: c.preemption,
      binding: (n) => (n.startsWith("vcpu") ? Number(n.slice(4)) : c.vcpus),
      costs,
      seed: opts.seed ?? 0,
      ...runHooks(opts),
      // Fault latencies and lock waits come from the timeline; it is kept only when asked for.
      timeline: true,
    },
  );
  if (full.status !== "ok" || kvm === null) {
    const why = full.violations[0]?.message ?? full.unfinished.join(", ");
    throw new Error(`nx-recovery: the run ended with status ${full.status}: ${why}`);
  }
  const lat: number[] = [];
  for (let v = 0; v < c.vcpus; v++) lat.push(...faultLatencies(full, `vcpu${v}`));
  lat.sort((a, b) => a - b);
  const metrics = summarise(full, c.vcpus, lat, (kvm as Kvm).nx!.nx_lpage_splits.v, listedBefore);
  const { timeline: _t, ...bare } = full;
  const result: SimResult = opts.timeline ? full : bare;
  return {
    label: run.label,
    kernel: run.readLock ? "v6.15 nxRecoveryUnderReadLock=on (= v6.18)" : "v6.15",
    params,
    metrics,
    results: [result],
  };
}

/** The run's figures: worker time, fault latency spread, and the vCPUs' share of time on mmu_lock. */
function summarise(
  full: SimResult,
  vcpus: number,
  lat: readonly number[],
  listedAfter: number,
  listedBefore: number,
): Record<string, number | null> {
  const worker = full.perTask.find((t) => t.name === WORKER);
  const workerNs =
    worker?.doneNs != null && worker.firstStepNs != null ? worker.doneNs - worker.firstStepNs : null;
  const vcpuIds = new Set<number>();
  let vcpuNs = 0;
  full.perTask.forEach((t, i) => {
    if (!t.name.startsWith("vcpu")) return;
    vcpuIds.add(i);
    if (t.doneNs != null && t.firstStepNs != null) vcpuNs += t.doneNs - t.firstStepNs;
  });
  let lockWait = 0;
  for (const w of full.timeline?.waits ?? []) {
    if (vcpuIds.has(w.task) && w.objName.endsWith("mmu_lock")) lockWait += w.endNs - w.startNs;
  }
  const us = (ns: number | null) => (ns === null ? null : ns / 1e3);
  return {
    workerMs: workerNs === null ? null : workerNs / 1e6,
    tablesZapped: listedBefore - listedAfter,
    faults: lat.length,
    faultP50Us: us(percentile(lat, 0.5)),
    faultP99Us: us(percentile(lat, 0.99)),
    faultMaxUs: us(lat.length === 0 ? null : lat[lat.length - 1]),
    lockWaitShare: vcpuNs === 0 ? null : lockWait / vcpuNs,
    vcpus,
    totalMs: full.virtualNs / 1e6,
    events: full.events,
  };
}

const PARAMS: readonly SimParamSpec[] = [
  { name: "vcpus", kind: "int", default: 8, min: 1, max: 512, doc: "vCPUs, each on a host CPU of its own" },
  {
    name: "memPerVcpu",
    kind: "size",
    default: 2 ** 30,
    min: TABLE_PAGES * PAGE_SIZE,
    max: 16 * 2 ** 30,
    doc: "guest memory per vCPU split into 4K by NX-mitigation fetch faults (a multiple of 2MiB; one listed table per 2MiB)",
  },
  {
    name: "ratio",
    kind: "int",
    default: NX_HUGE_PAGES_RECOVERY_RATIO,
    min: 1,
    max: 10000,
    doc: "nx_huge_pages_recovery_ratio: one wake-up zaps 1/ratio of the listed tables",
  },
  preemptionParam("voluntary"),
];

export const nxRecoveryScenario: SimScenario = {
  name: "nx-recovery",
  thread: null,
  summary:
    "NX huge page recovery (one wake-up of kvm_nx_huge_page_recovery_worker over an NX-split guest) while every vCPU demand-faults: the worker's run time and the vCPUs' fault latency and mmu_lock wait, with mmu_lock held for write (to 6.17) or read (6.18, a57750909580)",
  params: PARAMS,
  metrics: [
    { key: "workerMs", unit: "ms", doc: "the worker's wake-up, first step to done" },
    { key: "tablesZapped", unit: "count", doc: "listed 4K tables the wake-up took off the list" },
    { key: "faults", unit: "count", doc: "EPT violations the vCPUs handled during the run" },
    { key: "faultP50Us", unit: "us", doc: "median fault latency (VM exit to the next entry)" },
    { key: "faultP99Us", unit: "us", doc: "its 99th percentile" },
    { key: "faultMaxUs", unit: "us", doc: "its maximum" },
    { key: "lockWaitShare", unit: "ratio", doc: "share of the vCPUs' run time spent waiting for mmu_lock" },
    { key: "vcpus", unit: "count", doc: "vCPUs" },
    ...RUN_END_METRICS,
  ],
  headline: "faultP99Us",
  run(params: SimParams, costs: Partial<CostModel>, opts: SimRunOptions = {}): SimScenarioRun[] {
    const per = Number(params.memPerVcpu);
    if (per % (TABLE_PAGES * PAGE_SIZE) !== 0) {
      throw new RangeError(`memPerVcpu must be a multiple of 2MiB (one listed 4K table each), not ${per}`);
    }
    const guest = Number(params.vcpus) * per;
    if (guest > MAX_NX_GUEST_BYTES) {
      throw new RangeError(
        `vcpus x memPerVcpu = ${guest} bytes; at most ${MAX_NX_GUEST_BYTES} (64GiB) fit a run of about a minute and 1GiB`,
      );
    }
    return NX_RECOVERY_RUNS.map((r) => runNxRecovery(r, params, costs, opts));
  },
};
