import type { Program } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { list_add_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { host_memory_backing } from "../../mmu/tdp_mmu_map.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, populate } from "../../mmu/testing.js";
import { agingPassTask, vcpuPopulateTask } from "../../mmu/workloads.js";
import {
  runHooks,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Scenario 4 (seed 004), timed: one aging pass of reclaim (clear_young notifications over a
 * prefaulted, young working set) while N vCPUs populate fresh memory, each access an EPT violation
 * handled under the read mmu_lock. Two designs, the only difference being features.locklessAging:
 * - "locked" (to 6.14): each notification takes mmu_lock for write, so it waits for the faults in
 *   flight to drain, and the queued rwlock turns new faults away until it is done;
 * - "lockless" (6.15, b146a9b34aed + af3b6a9eba48): no mmu_lock; the TDP roots are walked under RCU
 *   and each young SPTE is made old with one atomic clear.
 * Reported: the aging pass time, and the vCPUs' fault latency (from a fault's first step to its
 * return, taken from the simulator's timeline for every fault of every vCPU task).
 */

export const AGING_DESIGNS = ["locked", "lockless"] as const;
export type AgingDesign = (typeof AGING_DESIGNS)[number];

const PAGE = 4096;
const AGER = "aging";
/** gfns each vCPU may populate (its fresh region, never materialised unless faulted). */
const REGION_PAGES = 1 << 18;

/** Fault latencies (ns) of one task, from the timeline: each fault spans the steps between a VM exit and the next entry. */
export function faultLatencies(result: SimResult, taskName: string): number[] {
  const tl = result.timeline;
  if (tl === undefined) throw new Error("faultLatencies needs a run with timeline: true");
  const id = result.perTask.findIndex((t) => t.name === taskName);
  const out: number[] = [];
  let afterExit = false;
  let start = -1;
  let end = -1;
  const close = () => {
    if (start >= 0) out.push(end - start);
    start = -1;
  };
  for (const s of tl.steps) {
    if (s.task !== id) continue;
    if (s.fn === "vcpu_exit_guest") {
      close();
      afterExit = true;
      continue;
    }
    if (s.fn === "vcpu_enter_guest" || s.fn === "kvm_put_kvm") {
      close();
      afterExit = false;
      continue;
    }
    if (afterExit) {
      if (start < 0) start = s.startNs;
      end = s.endNs;
    }
  }
  close();
  return out;
}

/** Nearest-rank percentile of an ascending array (null when empty). */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

interface AgingConfig {
  readonly design: AgingDesign;
  readonly vcpus: number;
  readonly agedPages: number;
  readonly chunkPages: number;
  readonly preemption: "none" | "voluntary" | "full";
}

function program(c: AgingConfig): Program {
  return ({ spawn }) => {
    const kvm = makeVm({
      kernel: "v6.15",
      features: { locklessAging: c.design === "lockless" },
      ptes: 512,
      rootLevel: 4,
      // A production kernel: no CONFIG_KVM_PROVE_MMU.
      machine: { ...simMachineConfig(c.preemption), proveMmu: false },
      checks: false,
    });
    kvm_mmu_init_tdp_mmu(kvm);
    // The TDP MMU's own reference (persistent roots) plus one per vCPU.
    const root = makeRoot(kvm, 1 + c.vcpus);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    ghost_root_published(kvm, root);
    // The working set being aged: mapped and young (the guest touched it before the pass).
    for (let gfn = 0; gfn < c.agedPages; gfn++) populate(kvm, root, gfn, 1, { accessed: true });
    const fresh = c.agedPages;
    // The selftests' default backing: anonymous memory, 4K pages, allocated by the host on first touch.
    host_memory_backing(kvm, 0, fresh + c.vcpus * REGION_PAGES, { resident: false, hugepages: false });
    const stop = new Atomic("scenario.stop", 0, null);
    for (let v = 0; v < c.vcpus; v++) {
      const base = fresh + v * REGION_PAGES;
      // The guest was already populating: the tables above its next page exist (a new leaf table is
      // still needed every 512 pages, as in the steady state).
      populate(kvm, root, base);
      const start = base + 1;
      spawn(`vcpu${v}`, vcpuPopulateTask(makeVcpu(kvm, root), { start, end: base + REGION_PAGES, stop }));
    }
    spawn(
      AGER,
      agingPassTask(kvm, 0, c.agedPages, c.chunkPages, function* () {
        yield* WRITE_ONCE(stop, 1);
      }),
    );
  };
}

export interface AgingOutcome extends SimScenarioRun {
  /** Every fault latency of every vCPU (ns), ascending. */
  readonly latencies: readonly number[];
}

/** One design at one parameter point. Deterministic. */
export function runLocklessAging(
  design: AgingDesign,
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): AgingOutcome {
  const agedPages = Math.max(512, Math.floor(Number(params.memory) / PAGE));
  const c: AgingConfig = {
    design,
    vcpus: Number(params.vcpus),
    agedPages,
    chunkPages: Math.max(1, Math.min(agedPages, Math.floor(Number(params.chunk) / PAGE))),
    preemption: params.preemption as AgingConfig["preemption"],
  };
  const N = c.vcpus;
  const full = simulate(program(c), {
    kernel: kernelView,
    cpus: N + 1,
    preemption: c.preemption,
    binding: (n) => (n.startsWith("vcpu") ? Number(n.slice(4)) : N),
    costs,
    seed: opts.seed ?? 1,
    ...runHooks(opts),
    // The fault latencies come from the timeline, so it is always recorded; it is kept in the result
    // only when asked for.
    timeline: true,
  });
  const lat: number[] = [];
  for (let v = 0; v < N; v++) lat.push(...faultLatencies(full, `vcpu${v}`));
  lat.sort((a, b) => a - b);
  const ager = full.perTask.find((t) => t.name === AGER);
  const passNs = ager?.doneNs != null && ager.firstStepNs != null ? ager.doneNs - ager.firstStepNs : null;
  let lockWait = 0;
  const agerId = full.perTask.findIndex((t) => t.name === AGER);
  for (const w of full.timeline?.waits ?? []) {
    if (w.task === agerId && w.objName.endsWith("mmu_lock")) lockWait += w.endNs - w.startNs;
  }
  const { timeline: _t, ...bare } = full;
  const result: SimResult = opts.timeline ? full : bare;
  const us = (ns: number | null) => (ns === null ? null : ns / 1e3);
  const mean = lat.length === 0 ? null : lat.reduce((a, b) => a + b, 0) / lat.length;
  return {
    label: design,
    kernel: design === "lockless" ? "v6.15" : "v6.15 locklessAging=off (= v6.14)",
    params,
    metrics: {
      agingPassMs: passNs === null ? null : passNs / 1e6,
      agingLockWaitMs: lockWait / 1e6,
      faults: lat.length,
      faultP50Us: us(percentile(lat, 0.5)),
      faultP99Us: us(percentile(lat, 0.99)),
      faultMaxUs: us(lat.length === 0 ? null : lat[lat.length - 1]),
      faultMeanUs: us(mean),
      agedPages,
      notifications: Math.ceil(agedPages / c.chunkPages),
    },
    results: [result],
    latencies: lat,
  };
}

export const locklessAging: SimScenario = {
  name: "lockless-aging",
  thread: "004",
  summary:
    "an aging pass (clear_young over a young working set) while N vCPUs populate memory: under the write " +
    "mmu_lock (to 6.14) vs lockless with RCU and KVM_RMAP_LOCKED (6.15); pass time and fault p50/p99",
  params: [
    {
      name: "design",
      kind: "enum",
      values: ["all", ...AGING_DESIGNS],
      default: "all",
      doc: "locked: features.locklessAging off (6.14); lockless: 6.15",
    },
    {
      name: "vcpus",
      kind: "int",
      default: 8,
      min: 1,
      max: 512,
      doc: "vCPUs populating fresh memory (one CPU each)",
    },
    {
      name: "memory",
      kind: "size",
      default: 32 * 2 ** 20,
      min: 2 * 2 ** 20,
      max: 2 ** 30,
      doc:
        "the aged working set, prefaulted young with 4K leaves (materialised: one object per SPTE, so " +
        "1GiB = 256K SPTEs is the practical ceiling; the vCPUs' faults during the pass add to the run)",
    },
    {
      name: "chunk",
      kind: "size",
      default: 2 * 2 ** 20,
      min: PAGE,
      max: 2 ** 30,
      doc: "memory per clear_young notification: 4KiB as page_idle or rmap-based reclaim, 2MiB as a PMD walk",
    },
    {
      name: "preemption",
      kind: "enum",
      values: ["none", "voluntary", "full"],
      default: "voluntary",
      doc: "kernel preemption model",
    },
  ],
  metrics: [
    { key: "agingPassMs", unit: "ms", doc: "first to last step of the aging pass" },
    { key: "agingLockWaitMs", unit: "ms", doc: "time the pass waited for mmu_lock" },
    { key: "faults", unit: "count", doc: "vCPU faults during the pass (the vCPUs stop when it ends)" },
    { key: "faultP50Us", unit: "us", doc: "median fault latency (first step of the fault to its return)" },
    { key: "faultP99Us", unit: "us", doc: "99th percentile fault latency" },
    { key: "faultMaxUs", unit: "us", doc: "worst fault latency" },
    { key: "faultMeanUs", unit: "us", doc: "mean fault latency" },
    { key: "agedPages", unit: "count", doc: "4K pages the pass ages" },
    { key: "notifications", unit: "count", doc: "clear_young calls of the pass" },
  ],
  headline: "faultP99Us",
  run(params: SimParams, costs: Partial<CostModel>, opts?: SimRunOptions): SimScenarioRun[] {
    const designs = params.design === "all" ? AGING_DESIGNS : [params.design as AgingDesign];
    return designs.map((d) => {
      const { latencies: _l, ...run } = runLocklessAging(d, params, costs, opts);
      return run;
    });
  },
};
